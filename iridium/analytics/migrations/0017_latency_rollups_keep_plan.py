"""The latency roll-ups are kept per plan as well: a plan's percentiles are read from them, not
from a third of the raw rows. The rows already rolled up are sums over every plan (`by_plan`
false); the rows kept per plan are added here for every day and hour whose raw rows are still
there (a day whose raw rows retention has purged had no latency with a plan filter before
either). Backwards: the rows kept per plan are deleted."""

import math
from datetime import date, datetime, time
from itertools import product

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, FloatField, Value
from django.db.models.functions import Ceil, Greatest, Ln, TruncDate, TruncHour
from django.utils import timezone

# As iridium.analytics.histograms has them when this migration is written (copied: a later
# change of the buckets needs its own migration).
LOG_GAMMA = math.log((1 + 0.01) / (1 - 0.01))
MIN_MS = 0.01
DIMENSIONS = ("model", "feature", "variant")


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


def keep_plans(apps, schema_editor):
    Generation = apps.get_model("ai", "Generation")
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
                .values_list("period", *DIMENSIONS, "plan_id", "bucket")
                .annotate(calls=Count("id"))
                .order_by()
            )
            for period, *values, plan, bucket, calls in counted:
                if isinstance(period, str):  # SQLite
                    period = date.fromisoformat(period)
                if field == "hour":
                    period = timezone.localtime(period)
                if period not in rolled:  # the hour under way, or a day not rolled up yet
                    continue
                for kept in product((True, False), repeat=3):
                    key = (period, *(v if on else "" for v, on in zip(values, kept)), plan, *kept)
                    counts = cube.setdefault(key, ({}, {}))[index]
                    counts[int(bucket)] = counts.get(int(bucket), 0) + calls
        table.objects.bulk_create(
            (
                table(
                    **{field: period},
                    **({"day": timezone.localtime(period).date()} if field == "hour" else {}),
                    model=model, feature=feature, variant=variant, plan_id=plan,
                    by_model=by_model, by_feature=by_feature, by_variant=by_variant, by_plan=True,
                    latency=pack(latency), first_token=pack(first_token),
                )
                for (period, model, feature, variant, plan, by_model, by_feature, by_variant),
                (latency, first_token) in cube.items()
            ),
            batch_size=500,
        )  # fmt: skip


def forget_plans(apps, schema_editor):
    for name in ("DailyLatency", "HourlyLatency"):
        apps.get_model("analytics", name).objects.filter(by_plan=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_audit_log"),
        ("ai", "0009_generation_covering_indexes"),
        ("analytics", "0016_conversationseen_last_call"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="dailylatency", name="dailylatency_kept"),
        migrations.RemoveIndex(model_name="hourlylatency", name="hourlylatency_kept"),
        # The rows rolled up so far are sums over every plan.
        migrations.AddField(
            model_name="dailylatency",
            name="by_plan",
            field=models.BooleanField(default=False, help_text="False: every plan summed."),
        ),
        migrations.AddField(
            model_name="hourlylatency",
            name="by_plan",
            field=models.BooleanField(default=False, help_text="False: every plan summed."),
        ),
        migrations.AlterField(
            model_name="dailylatency",
            name="by_plan",
            field=models.BooleanField(default=True, help_text="False: every plan summed."),
        ),
        migrations.AlterField(
            model_name="hourlylatency",
            name="by_plan",
            field=models.BooleanField(default=True, help_text="False: every plan summed."),
        ),
        migrations.AddField(
            model_name="dailylatency",
            name="plan",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.plan",
            ),
        ),
        migrations.AddField(
            model_name="hourlylatency",
            name="plan",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.plan",
            ),
        ),
        migrations.AddIndex(
            model_name="dailylatency",
            index=models.Index(
                fields=["by_model", "by_feature", "by_variant", "by_plan", "day"],
                name="dailylatency_kept_plan",
            ),
        ),
        migrations.AddIndex(
            model_name="hourlylatency",
            index=models.Index(
                fields=["by_model", "by_feature", "by_variant", "by_plan", "hour"],
                name="hourlylatency_kept_plan",
            ),
        ),
        migrations.RunPython(keep_plans, forget_plans),
    ]
