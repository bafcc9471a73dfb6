from django.db import migrations, models


def roll_up_again(apps, schema_editor):
    """The latency roll-ups were per model only: they are made again, per model, feature and
    variant, by the next run of the periodic job (until then the console reads raw rows)."""
    apps.get_model("analytics", "DailyLatency").objects.all().delete()
    apps.get_model("analytics", "RollupMark").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0009_dailyusage_tokens_and_variant")]

    operations = [
        migrations.AddField(
            model_name="dailylatency",
            name="feature",
            field=models.CharField(blank=True, default="", max_length=50),
        ),
        migrations.AddField(
            model_name="dailylatency",
            name="variant",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.RunPython(roll_up_again, migrations.RunPython.noop),
    ]
