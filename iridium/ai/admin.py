from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import (
    BudgetWarning,
    FlagOverride,
    Generation,
    PriceData,
    PriceOverride,
    Span,
    UnpricedModel,
)


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "input_usd_per_mtok",
        "cached_input_usd_per_mtok",
        "output_usd_per_mtok",
        "note",
        "updated_at",
    ]
    search_fields = ["model", "note"]


@admin.register(UnpricedModel)
class UnpricedModelAdmin(admin.ModelAdmin):
    """Models called without a known price: their calls are recorded with cost unknown."""

    list_display = ["model", "provider", "calls", "first_seen", "last_seen", "set_price"]
    search_fields = ["model"]
    readonly_fields = ["model", "provider", "calls", "first_seen", "last_seen"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="price")
    def set_price(self, obj):
        if PriceOverride.objects.filter(model=obj.model).exists():
            return "override set"
        url = reverse("admin:ai_priceoverride_add") + f"?model={obj.model}"
        return format_html('<a href="{}">Set a price</a>', url)


@admin.register(FlagOverride)
class FlagOverrideAdmin(admin.ModelAdmin):
    """Emergency switches that win over PostHog (ai-kill-switch, advanced-ai-model, ...).
    Every change is in the object's History, with who made it."""

    list_display = ["key", "value", "active", "note", "updated_by", "updated_at"]
    list_editable = ["active"]
    list_filter = ["active"]
    search_fields = ["key", "note"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the service (or by alerts); admins read them, nobody edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ContentHiddenAdmin(ReadOnlyAdmin):
    """A call's or tool step's row without its content (prompts, answers, tool input and output,
    error text that may quote them): each row links to its trace in the console, which shows
    the content to who may read it and writes the read to the audit log."""

    content_fields = ["error"]
    readonly_fields = ["console_trace"]

    def get_exclude(self, request, obj=None):
        return self.content_fields

    @admin.display(description="trace")
    def console_trace(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("analytics:trace", args=[obj.trace_id]), obj.trace_id
        )


@admin.register(Generation)
class GenerationAdmin(ContentHiddenAdmin):
    content_fields = ["input", "output", "error", "properties"]
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
        "console_trace",
    ]
    list_filter = ["feature", "model", "is_error", "cache_hit", "privacy_mode", "stream", "plan"]
    search_fields = ["trace_id", "span_id", "user__username", "model"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"


@admin.register(Span)
class SpanAdmin(ContentHiddenAdmin):
    content_fields = ["input_state", "output_state", "error"]
    list_display = [
        "created_at",
        "name",
        "feature",
        "latency_ms",
        "is_error",
        "console_trace",
    ]
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


@admin.register(PriceData)
class PriceDataAdmin(ReadOnlyAdmin):
    """Price data fetched by the `refresh_prices` job (AI_PRICES_UPDATE_URL); the newest is in
    use on every process."""

    list_display = ["fetched_at", "providers", "url"]
    exclude = ["payload"]  # hundreds of kB of JSON
    date_hierarchy = "fetched_at"
