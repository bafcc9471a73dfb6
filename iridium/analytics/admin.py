from django.contrib import admin

from .models import AlertRule, BudgetWarning, FiredAlert, Generation, Span


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by iridium.ai; admins read them, nobody edits them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Generation)
class GenerationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "feature",
        "model",
        "user",
        "input_tokens",
        "output_tokens",
        "total_cost_usd",
        "latency_ms",
        "is_error",
    ]
    list_filter = ["feature", "model", "is_error", "cache_hit", "privacy_mode", "stream", "plan"]
    search_fields = ["trace_id", "span_id", "user__username", "model"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"


@admin.register(Span)
class SpanAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "name", "feature", "trace_id", "latency_ms", "is_error"]
    list_filter = ["feature", "is_error"]
    search_fields = ["trace_id", "span_id", "name"]
    date_hierarchy = "created_at"


@admin.register(BudgetWarning)
class BudgetWarningAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "period",
        "percent",
        "user",
        "organization",
        "budget_usd",
        "spent_usd",
    ]
    list_filter = ["percent", "period"]
    search_fields = ["user__username", "organization__name"]


class FiredInline(admin.TabularInline):
    model = FiredAlert
    fields = ["fired_at", "value", "message", "emailed", "webhook_delivered", "delivery_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "threshold", "window_minutes", "min_calls", "cooldown_minutes",
                    "active"]  # fmt: skip
    list_filter = ["kind", "active"]
    inlines = [FiredInline]


@admin.register(FiredAlert)
class FiredAlertAdmin(ReadOnlyAdmin):
    list_display = ["fired_at", "rule", "value", "emailed", "webhook_delivered"]
    list_filter = ["rule", "emailed", "webhook_delivered"]
    date_hierarchy = "fired_at"
