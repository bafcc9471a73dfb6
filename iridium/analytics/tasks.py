"""The console's periodic work as django-tasks tasks, run by `manage.py worker` on the schedule
of settings.PERIODIC_JOBS (iridium.jobs)."""

from django_tasks import task

from .alerts import evaluate_all
from .rollups import rollup_new_days, rollup_new_hours


@task()
def evaluate_alerts() -> int:
    """Evaluate every active alert rule; how many fired."""
    return len(evaluate_all())


@task()
def rollup_generations() -> int:
    """Roll up the complete days not rolled up yet, then the complete hours of yesterday and
    today (the console reads the raw rows of the hour under way on top, so its figures are
    exact at any hour). The usage rows written."""
    return rollup_new_days() + rollup_new_hours()
