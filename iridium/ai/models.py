from django.db import models


class PriceOverride(models.Model):
    """An admin-set price for a model that genai-prices does not know (custom or fine-tuned)
    or prices differently from the contract. Wins over genai-prices for that model name."""

    model = models.CharField(max_length=100, unique=True, help_text="Model name as requested.")
    input_usd_per_mtok = models.DecimalField(
        "input (USD per million tokens)", max_digits=12, decimal_places=6
    )
    cached_input_usd_per_mtok = models.DecimalField(
        "cached input (USD per million tokens)",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Leave empty to price cached input tokens like other input tokens.",
    )
    output_usd_per_mtok = models.DecimalField(
        "output (USD per million tokens)", max_digits=12, decimal_places=6
    )
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self):
        return self.model


class UnpricedModel(models.Model):
    """A model that was called but has no known price: its calls are recorded with cost unknown."""

    model = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=50)
    calls = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self):
        return self.model


class FlagOverride(models.Model):
    """An admin's value for a feature flag; it wins over PostHog, and works without it.

    `ai-kill-switch` takes `refuse` (no AI calls) or `cheapest` (the cheapest model); `true`
    means the mode in AI_KILL_SWITCH_MODE. `advanced-ai-model` takes true or false. An
    experiment flag takes a variant name, with a payload such as {"model": "gpt-4.1-mini"} or
    {"system_prompt": "..."}.
    """

    key = models.CharField(max_length=100, unique=True, help_text="The flag's key.")
    value = models.CharField(
        max_length=100, help_text="true, false, or a variant name (e.g. refuse, cheapest)."
    )
    payload = models.JSONField(null=True, blank=True)
    active = models.BooleanField(default=True, help_text="Off: PostHog decides again.")
    note = models.CharField(max_length=200, blank=True)
    updated_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} = {self.value}"

    def parsed_value(self) -> bool | str:
        lowered = self.value.strip().lower()
        if lowered in ("true", "on", "1", "yes"):
            return True
        if lowered in ("false", "off", "0", "no"):
            return False
        return self.value.strip()
