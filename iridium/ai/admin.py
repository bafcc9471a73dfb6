from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import PriceOverride, UnpricedModel


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
