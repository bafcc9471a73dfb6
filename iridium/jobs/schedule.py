"""Periodic work without cron: every worker process (`manage.py worker`) runs a scheduler
thread next to django-tasks-db's worker loop. Each PERIODIC_JOBS entry is a PeriodicJob row; a
job that is due is claimed by a conditional UPDATE of its `next_run_at` (only one worker's
update matches), and the worker that claimed it enqueues the task, which any worker then runs.
So the schedule is kept once across any number of workers on any number of hosts, with nothing
but the database they share."""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import PeriodicJob

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0


def sync_jobs() -> None:
    """Make the PeriodicJob rows say what settings.PERIODIC_JOBS says (new jobs are due now)."""
    now = timezone.now()
    wanted = settings.PERIODIC_JOBS
    for path, every in wanted.items():
        job, created = PeriodicJob.objects.get_or_create(
            task_path=path, defaults={"every_seconds": every, "next_run_at": now}
        )
        if not created and (job.every_seconds != every or not job.active):
            PeriodicJob.objects.filter(pk=job.pk).update(every_seconds=every, active=True)
    PeriodicJob.objects.exclude(task_path__in=list(wanted)).update(active=False)


def run_due(now=None) -> list[str]:
    """Enqueue every due job this worker claims; the task paths enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job in PeriodicJob.objects.filter(active=True, next_run_at__lte=now):
        next_run = now + timedelta(seconds=job.every_seconds)
        claimed = PeriodicJob.objects.filter(pk=job.pk, next_run_at=job.next_run_at).update(
            next_run_at=next_run
        )
        if not claimed:
            continue  # another worker claimed it first
        try:
            result = import_string(job.task_path).enqueue()
        except Exception as error:
            logger.exception("could not enqueue %s", job.task_path)
            PeriodicJob.objects.filter(pk=job.pk).update(
                last_outcome=PeriodicJob.Outcome.FAILED,
                last_error=f"not enqueued: {type(error).__name__}"[:300],
            )
            continue
        PeriodicJob.objects.filter(pk=job.pk).update(
            last_enqueued_at=now,
            last_result_id=str(result.id),
            last_outcome=PeriodicJob.Outcome.RUNNING,
            last_error="",
        )
        enqueued.append(job.task_path)
    return enqueued


def note_finished(sender, task_result, **kwargs) -> None:
    """django-tasks' task_finished: the job's outcome, for admin."""
    status = str(getattr(task_result.status, "value", task_result.status)).lower()
    failed = status == "failed"
    error = ""
    if failed and task_result.errors:
        error = task_result.errors[-1].exception_class_path
    PeriodicJob.objects.filter(last_result_id=str(task_result.id)).update(
        last_finished_at=timezone.now(),
        last_outcome=PeriodicJob.Outcome.FAILED if failed else PeriodicJob.Outcome.SUCCESSFUL,
        last_error=error[:300],
    )
    if not failed:
        from django.db.models import F

        PeriodicJob.objects.filter(last_result_id=str(task_result.id)).update(runs=F("runs") + 1)


class Scheduler(threading.Thread):
    """The scheduler thread of one worker process."""

    def __init__(self, tick: float = TICK_SECONDS):
        super().__init__(name="iridium-scheduler", daemon=True)
        self.tick = tick
        self.stopping = threading.Event()

    def run(self):
        try:
            sync_jobs()
        except Exception:
            logger.exception("could not read the periodic jobs")
        while not self.stopping.wait(self.tick):
            try:
                run_due()
            except Exception:  # a database that went away a moment: try again next tick
                logger.exception("the scheduler could not run")
            finally:
                close_old_connections()

    def stop(self):
        self.stopping.set()
