"""DailyLatency's histograms, counted per millisecond until now, become log-spaced buckets of
1% (iridium.analytics.histograms), kept per model, feature and variant and summed over any of
them (grouping sets). The days already rolled up are converted here, so their history stays
whatever the retention of the raw rows: each millisecond (the duration rounded when it was
rolled up) goes to its bucket. Backwards: the roll-ups are made again from the raw rows by the
next run of the periodic job (the days whose raw rows are gone have no latency then)."""

import math
from itertools import product

from django.db import migrations, models

# As iridium.analytics.histograms had them when this migration was written (copied: a later
# change of the buckets needs its own migration).
GAMMA = (1 + 0.01) / (1 - 0.01)
MIN_MS = 0.01


def bucket(ms: float) -> int:
    return math.ceil(math.log(max(ms, MIN_MS)) / math.log(GAMMA))


def pack(counts: dict) -> list:
    counts = {index: n for index, n in counts.items() if n}
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [first, *(counts.get(index, 0) for index in range(first, last + 1))]


def to_buckets(apps, schema_editor):
    DailyLatency = apps.get_model("analytics", "DailyLatency")
    cube: dict = {}
    for row in DailyLatency.objects.order_by("pk").iterator(chunk_size=500):
        values = (row.model, row.feature, row.variant)
        for index, histogram in enumerate((row.latency, row.first_token)):
            if not isinstance(histogram, dict):  # already buckets
                continue
            counts: dict = {}
            for milliseconds, calls in histogram.items():
                counts[bucket(float(milliseconds))] = counts.get(bucket(float(milliseconds)), 0) + calls
            for kept in product((True, False), repeat=3):
                key = (row.day, *(v if on else "" for v, on in zip(values, kept)), *kept)
                into = cube.setdefault(key, ({}, {}))[index]
                for found, calls in counts.items():
                    into[found] = into.get(found, 0) + calls
    DailyLatency.objects.all().delete()
    DailyLatency.objects.bulk_create(
        (
            DailyLatency(
                day=day, model=model, feature=feature, variant=variant, by_model=by_model,
                by_feature=by_feature, by_variant=by_variant, latency=pack(latency),
                first_token=pack(first_token),
            )
            for (day, model, feature, variant, by_model, by_feature, by_variant),
            (latency, first_token) in cube.items()
        ),
        batch_size=500,
    )


def roll_up_again(apps, schema_editor):
    apps.get_model("analytics", "DailyLatency").objects.all().delete()
    apps.get_model("analytics", "RollupMark").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0012_dailyusage_is_error")]

    operations = [
        migrations.AddField(
            model_name="dailylatency",
            name="by_model",
            field=models.BooleanField(default=True, help_text="False: every model summed."),
        ),
        migrations.AddField(
            model_name="dailylatency",
            name="by_feature",
            field=models.BooleanField(default=True, help_text="False: every feature summed."),
        ),
        migrations.AddField(
            model_name="dailylatency",
            name="by_variant",
            field=models.BooleanField(default=True, help_text="False: every variant summed."),
        ),
        migrations.AlterField(
            model_name="dailylatency",
            name="latency",
            field=models.JSONField(
                default=list,
                help_text="[first bucket, calls in it, in the next, ...] (histograms.pack).",
            ),
        ),
        migrations.AlterField(
            model_name="dailylatency",
            name="first_token",
            field=models.JSONField(default=list, help_text="As latency."),
        ),
        migrations.AddIndex(
            model_name="dailylatency",
            index=models.Index(
                fields=["by_model", "by_feature", "by_variant", "day"], name="dailylatency_kept"
            ),
        ),
        migrations.RunPython(to_buckets, roll_up_again),
    ]
