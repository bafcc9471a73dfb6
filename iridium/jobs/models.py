from django.db import models


class PeriodicJob(models.Model):
    """A task that runs every `every_seconds` (settings.PERIODIC_JOBS), once across all
    workers: the worker whose update moves `next_run_at` on enqueues it (iridium.jobs.schedule)."""

    class Outcome(models.TextChoices):
        NONE = "", "Not run yet"
        RUNNING = "running", "Running"
        SUCCESSFUL = "successful", "Successful"
        FAILED = "failed", "Failed"

    task_path = models.CharField(max_length=200, unique=True, help_text="The task's dotted path.")
    every_seconds = models.PositiveIntegerField()
    active = models.BooleanField(default=True, help_text="Off: in settings no longer.")
    next_run_at = models.DateTimeField(db_index=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=12, choices=Outcome, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_result_id = models.CharField(max_length=64, blank=True, db_index=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["task_path"]

    def __str__(self):
        return self.task_path
