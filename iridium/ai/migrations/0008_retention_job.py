"""The daily retention job is the AI service's (iridium.ai.tasks.purge_generations): its
PeriodicJob row takes the new path, so the schedule and the job's history carry over."""

from django.db import migrations

BEFORE = "iridium.analytics.tasks.purge_generations"
AFTER = "iridium.ai.tasks.purge_generations"


def rename(old, new):
    def run(apps, schema_editor):
        PeriodicJob = apps.get_model("jobs", "PeriodicJob")
        if not PeriodicJob.objects.filter(task_path=new).exists():
            PeriodicJob.objects.filter(task_path=old).update(task_path=new)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("ai", "0007_pricedata"),
        ("jobs", "0001_periodic_jobs"),
    ]

    operations = [migrations.RunPython(rename(BEFORE, AFTER), rename(AFTER, BEFORE))]
