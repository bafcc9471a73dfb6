from django.contrib import admin
from django.utils.html import format_html

from iridium.ai.admin import ReadOnlyAdmin

from .models import AlertRule, FiredAlert


def in_the_console(alert_or_rule):
    rule = getattr(alert_or_rule, "rule", alert_or_rule)
    return format_html('<a href="{}">In the console</a>', rule.console_url())


in_the_console.short_description = "In the console"


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
                    "active", in_the_console]  # fmt: skip
    list_filter = ["kind", "active"]
    inlines = [FiredInline]


@admin.register(FiredAlert)
class FiredAlertAdmin(ReadOnlyAdmin):
    list_display = ["fired_at", "rule", "value", "emailed", "webhook_delivered", in_the_console]
    list_filter = ["rule", "emailed", "webhook_delivered"]
    date_hierarchy = "fired_at"
