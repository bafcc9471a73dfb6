"""The latency roll-ups' rows kept per organization (0018) are added for every day and hour
whose raw rows are still there, as 0017 did for the plans (a day whose raw rows retention has
purged had no latency with an organization filter before either). Backwards: the rows kept per
organization are deleted."""

import math
from datetime import date, datetime, time
from itertools import product

from django.db import migrations
from django.db.models import Count, FloatField, Value
from django.db.models.functions import Ceil, Greatest, Ln, TruncDate, TruncHour
from django.utils import timezone

# As iridium.analytics.histograms has them when this migration is written (copied: a later
# change of the buckets needs its own migration).
LOG_GAMMA = math.log((1 + 0.01) / (1 - 0.01))
MIN_MS = 0.01
DIMENSIONS = ("model", "feature", "variant", "plan_id")
EMPTY = ("", "", "", None)


def bucket_sql(column):
    return Ceil(
        Ln(Greatest(column, Value(MIN_MS), output_field=FloatField()))
        / Value(LOG_GAMMA, output_field=FloatField())
    )


def pack(counts):
    counts = {index: n for index, n in counts.items() if n}
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [first, *(counts.get(index, 0) for index in range(first, last + 1))]


def keep_organizations(apps, schema_editor):
    Generation = apps.get_model("ai", "Generation")
    sets = list(product((True, False), repeat=len(DIMENSIONS)))
    for name, truncate, field in [("DailyLatency", TruncDate, "day"),
                                  ("HourlyLatency", TruncHour, "hour")]:  # fmt: skip
        table = apps.get_model("analytics", name)
        rolled = set(table.objects.values_list(field, flat=True).distinct())
        if not rolled:
            continue
        first = min(rolled)
        if field == "day":
            first = timezone.make_aware(datetime.combine(first, time.min))
        successful = Generation.objects.filter(
            created_at__gte=first, cache_hit=False, is_error=False
        ).annotate(period=truncate("created_at"))
        cube: dict = {}
        for index, column in enumerate(("latency_ms", "time_to_first_token_ms")):
            counted = (
                successful.filter(**{f"{column}__isnull": False})
                .annotate(bucket=bucket_sql(column))
                .values_list("period", *DIMENSIONS, "organization_id", "bucket")
                .annotate(calls=Count("id"))
                .order_by()
            )
            for period, *values, organization, bucket, calls in counted:
                if isinstance(period, str):  # SQLite
                    period = date.fromisoformat(period)
                if field == "hour":
                    period = timezone.localtime(period)
                if period not in rolled:  # the hour under way, or a day not rolled up yet
                    continue
                for kept in sets:
                    summed = zip(values, kept, EMPTY, strict=True)
                    key = (period, *(v if on else e for v, on, e in summed), organization, *kept)
                    counts = cube.setdefault(key, ({}, {}))[index]
                    counts[int(bucket)] = counts.get(int(bucket), 0) + calls
        table.objects.bulk_create(
            (
                table(
                    **{field: period},
                    **({"day": timezone.localtime(period).date()} if field == "hour" else {}),
                    model=model, feature=feature, variant=variant, plan_id=plan,
                    organization_id=organization, by_model=by_model, by_feature=by_feature,
                    by_variant=by_variant, by_plan=by_plan, by_organization=True,
                    latency=pack(latency), first_token=pack(first_token),
                )
                for (period, model, feature, variant, plan, organization, by_model, by_feature,
                     by_variant, by_plan), (latency, first_token) in cube.items()
            ),
            batch_size=500,
        )  # fmt: skip


def forget_organizations(apps, schema_editor):
    for name in ("DailyLatency", "HourlyLatency"):
        apps.get_model("analytics", name).objects.filter(by_organization=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ai", "0009_generation_covering_indexes"),
        ("analytics", "0018_latency_rollups_keep_organization"),
    ]

    operations = [migrations.RunPython(keep_organizations, forget_organizations)]
