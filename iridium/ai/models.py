import uuid

from django.conf import settings
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


class PriceData(models.Model):
    """genai-prices' price data as fetched from AI_PRICES_UPDATE_URL by the periodic job
    `iridium.ai.tasks.refresh_prices`, once for the whole install; every worker process prices
    with the newest row (iridium.ai.pricing). Only the latest few are kept."""

    fetched_at = models.DateTimeField(auto_now_add=True, db_index=True)
    url = models.CharField(max_length=500)
    providers = models.PositiveIntegerField(help_text="Providers in the data.")
    payload = models.JSONField(help_text="The fetched JSON, as the library reads it.")

    class Meta:
        ordering = ["-fetched_at", "-pk"]
        verbose_name_plural = "price data"

    def __str__(self):
        return f"{self.providers} providers, fetched {self.fetched_at:%Y-%m-%d %H:%M}"


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


# What the console's figures read of a call besides who made it and when (the covering indexes).
COVERED = ["latency_ms", "time_to_first_token_ms", "cache_hit", "is_error", "model", "feature",
           "variant", "plan"]  # fmt: skip


class Generation(models.Model):
    """One provider call made through iridium.ai, or one answer served from its cache.

    Written by the AI service only (iridium.ai.recorder); the analytics console reads it.
    Content (`input`, `output`) is empty when privacy mode was on; costs are NULL when the
    model's price is unknown (never 0 for "unknown").
    """

    created_at = models.DateTimeField(db_index=True, help_text="When the call started.")
    trace_id = models.CharField(max_length=200, db_index=True, help_text="The turn's trace.")
    session_id = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="The turns' group (a conversation, a ticket): PostHog's $ai_session_id.",
    )
    span_id = models.CharField(max_length=64, unique=True)
    parent_id = models.CharField(max_length=200, blank=True)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="generations",
    )
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="generations",
    )
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    feature = models.CharField(max_length=50)

    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    base_url = models.CharField(max_length=300, blank=True)
    stream = models.BooleanField(default=False)
    step = models.PositiveSmallIntegerField(
        default=1, help_text="Step of the tool loop (1 = first)."
    )

    input_tokens = models.PositiveIntegerField(default=0, help_text="Includes cached tokens.")
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    input_cost_usd = models.DecimalField(max_digits=14, decimal_places=10, null=True, blank=True)
    output_cost_usd = models.DecimalField(max_digits=14, decimal_places=10, null=True, blank=True)
    total_cost_usd = models.DecimalField(max_digits=14, decimal_places=10, null=True, blank=True)

    latency_ms = models.FloatField(help_text="From the request to the last byte of the answer.")
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1, help_text="HTTP attempts (retries + 1).")
    is_error = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=30, blank=True)

    cache_hit = models.BooleanField(default=False)
    saved_cost_usd = models.DecimalField(
        max_digits=14, decimal_places=10, null=True, blank=True, help_text="Cost a cache hit saved."
    )
    estimated_input_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Estimated before the call, to compare with the count."
    )
    estimate_ratio = models.FloatField(
        null=True, blank=True, help_text="Counted input tokens per estimated one (1.0 = exact)."
    )
    routing_reason = models.CharField(max_length=100, blank=True)
    flags = models.JSONField(default=dict, blank=True, help_text="Flags that decided the call.")
    variant = models.CharField(max_length=100, blank=True, help_text="Experiment variant.")

    # A call in flight: the row is written when the call starts, so that a worker that dies
    # mid-call leaves it behind (iridium.ai.recovery marks it interrupted, with estimated usage).
    in_flight = models.BooleanField(default=False)
    reserved_cost_usd = models.DecimalField(
        max_digits=14,
        decimal_places=10,
        null=True,
        blank=True,
        help_text="The most the call could cost, held against budgets while it runs.",
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of a call in flight."
    )

    privacy_mode = models.BooleanField(default=False)
    tools = models.JSONField(default=list, blank=True, help_text="Names of the tools offered.")
    properties = models.JSONField(default=dict, blank=True, help_text="The app's properties.")
    input = models.JSONField(
        null=True, blank=True, help_text="Messages sent (not in privacy mode)."
    )
    output = models.JSONField(null=True, blank=True, help_text="Answer (not in privacy mode).")

    class Meta:
        db_table = "analytics_generation"  # where it was first created: no data moved
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["feature", "created_at"]),
            # One person's or one organization's calls over a period: the console's latency
            # percentiles with those filters are read raw (iridium.analytics.models.Latency),
            # from these indexes alone (an index-only scan), not from a heap page per call.
            models.Index(
                fields=["user", "created_at"],
                include=[*COVERED, "organization"],
                name="generation_user_covering",
            ),
            models.Index(
                fields=["organization", "created_at"],
                include=[*COVERED, "user"],
                name="generation_org_covering",
            ),
            models.Index(fields=["plan", "created_at"]),
            models.Index(fields=["model", "created_at"]),
            models.Index(
                fields=["user", "heartbeat_at"],
                condition=models.Q(in_flight=True),
                name="generation_in_flight",
            ),
        ]

    def __str__(self):
        return f"{self.feature} {self.model} {self.span_id}"


class Span(models.Model):
    """A step of a traced call that is not a provider call: a tool run, or the whole tool loop."""

    created_at = models.DateTimeField(db_index=True)
    trace_id = models.CharField(max_length=200, db_index=True)
    session_id = models.CharField(max_length=200, blank=True, db_index=True)
    span_id = models.CharField(max_length=64, unique=True)
    parent_id = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    feature = models.CharField(max_length=50)
    latency_ms = models.FloatField()
    is_error = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    privacy_mode = models.BooleanField(default=False)
    input_state = models.JSONField(null=True, blank=True)
    output_state = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "analytics_span"
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.name} {self.span_id}"


class BudgetWarning(models.Model):
    """A budget reached 80% or 100% in a period: recorded once per budget, period and level."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    period = models.CharField(max_length=7, help_text="YYYY-MM")
    percent = models.PositiveSmallIntegerField()
    budget_usd = models.DecimalField(max_digits=10, decimal_places=2)
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "analytics_budgetwarning"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period", "percent"],
                condition=models.Q(organization__isnull=True),
                name="one_user_budget_warning_per_level",
            ),
            models.UniqueConstraint(
                fields=["organization", "period", "percent"],
                condition=models.Q(user__isnull=True),
                name="one_organization_budget_warning_per_level",
            ),
        ]

    def __str__(self):
        subject = self.organization or self.user
        return f"{subject}: {self.percent}% of ${self.budget_usd} in {self.period}"


class Feedback(models.Model):
    """A person's thumbs up or down, with an optional comment, on one answer (one trace), given
    by the person the answer was for and changeable by them (iridium.ai.feedback). The comment
    is what they typed: kept here, and sent to PostHog only outside privacy mode."""

    class Rating(models.TextChoices):
        UP = "up", "Thumbs up"
        DOWN = "down", "Thumbs down"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ai_feedback"
    )
    trace_id = models.CharField(max_length=200, help_text="The answer's trace.")
    session_id = models.CharField(max_length=200, blank=True)
    feature = models.CharField(max_length=50)
    model = models.CharField(max_length=100, blank=True)
    variant = models.CharField(max_length=100, blank=True, help_text="Experiment variant.")
    rating = models.CharField(max_length=4, choices=Rating)
    comment = models.TextField(blank=True)
    # PostHog joins the events of one survey response by it: a change replaces the response.
    submission_id = models.UUIDField(default=uuid.uuid4, editable=False)
    privacy_mode = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "trace_id"], name="one_feedback_per_answer")
        ]
        indexes = [models.Index(fields=["feature", "updated_at"])]

    def __str__(self):
        return f"{self.rating} on {self.trace_id}"
