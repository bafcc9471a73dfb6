from django.contrib import admin

from iridium.ai.admin import ReadOnlyAdmin

from .models import AlertRule, FiredAlert


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
