from django.contrib import admin, messages
from django.utils import timezone

from .models import PeriodicJob


@admin.register(PeriodicJob)
class PeriodicJobAdmin(admin.ModelAdmin):
    """Each periodic job's last run, its outcome and its next run (settings.PERIODIC_JOBS
    decides which jobs there are; `manage.py worker` runs them)."""

    list_display = [
        "task_path",
        "every_seconds",
        "last_enqueued_at",
        "last_outcome",
        "last_error",
        "next_run_at",
        "runs",
        "active",
    ]
    list_filter = ["last_outcome", "active"]
    readonly_fields = [f.name for f in PeriodicJob._meta.fields]
    actions = ["run_now"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Run now (the next worker tick enqueues it)")
    def run_now(self, request, queryset):
        count = queryset.update(next_run_at=timezone.now())
        self.message_user(request, f"{count} job(s) will run at once.", messages.SUCCESS)
