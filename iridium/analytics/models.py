from django.conf import settings
from django.db import models


class Generation(models.Model):
    """One provider call made through iridium.ai (and, with part 2, one cache hit).

    Written by the AI service only. Content (`input`, `output`) is empty when privacy mode was on;
    costs are NULL when the model's price is unknown (never 0 for "unknown").
    """

    created_at = models.DateTimeField(db_index=True, help_text="When the call started.")
    trace_id = models.CharField(max_length=200, db_index=True)
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

    privacy_mode = models.BooleanField(default=False)
    tools = models.JSONField(default=list, blank=True, help_text="Names of the tools offered.")
    properties = models.JSONField(default=dict, blank=True, help_text="The app's properties.")
    input = models.JSONField(
        null=True, blank=True, help_text="Messages sent (not in privacy mode)."
    )
    output = models.JSONField(null=True, blank=True, help_text="Answer (not in privacy mode).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["feature", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["plan", "created_at"]),
            models.Index(fields=["model", "created_at"]),
        ]

    def __str__(self):
        return f"{self.feature} {self.model} {self.span_id}"


class Span(models.Model):
    """A step of a traced call that is not a provider call: a tool run, or the whole tool loop."""

    created_at = models.DateTimeField(db_index=True)
    trace_id = models.CharField(max_length=200, db_index=True)
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


class AlertRule(models.Model):
    """A condition on the generation record that, when met, alerts people by email and webhook.

    Evaluated by `manage.py evaluate_alerts` (run it from cron, e.g. every five minutes).
    """

    class Kind(models.TextChoices):
        SPEND = "spend", "Spend in the window over $threshold"
        LATENCY_AVG = "latency_avg", "Average latency over threshold seconds"
        LATENCY_P95 = "latency_p95", "p95 latency over threshold seconds"
        ERROR_RATE = "error_rate", "Error rate over threshold percent"
        SPIKE = "spike", "Calls in the last hour over threshold times the trailing hourly average"
        BUDGET = "budget", "A plan's or organization's budget used to threshold percent"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind)
    threshold = models.DecimalField(max_digits=12, decimal_places=4)
    window_minutes = models.PositiveIntegerField(
        default=1440, help_text="The period looked at (spike: the trailing period averaged)."
    )
    min_calls = models.PositiveIntegerField(
        default=0, help_text="Fewer calls than this in the window: the rule does not fire."
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="After firing, stay quiet this long."
    )
    feature = models.CharField(max_length=50, blank=True, help_text="Only this feature (optional).")
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    emails = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    webhook_url = models.URLField(blank=True, help_text="Slack-compatible incoming webhook.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class FiredAlert(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="fired")
    fired_at = models.DateTimeField(auto_now_add=True, db_index=True)
    value = models.DecimalField(max_digits=16, decimal_places=6)
    message = models.TextField()
    emailed = models.BooleanField(default=False)
    webhook_delivered = models.BooleanField(default=False)
    delivery_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-fired_at"]

    def __str__(self):
        return f"{self.rule}: {self.message[:60]}"


class DailyUsage(models.Model):
    """The generation record summed by UTC day, feature, model, plan, organization and user.

    Written by `manage.py rollup_generations` for complete days; the console reads it for those
    days and the raw rows for the days after, so its figures stay exact and fast.
    """

    day = models.DateField(db_index=True)
    feature = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    requests = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    unpriced = models.PositiveIntegerField(default=0)
    spend = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    saved = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    estimated = models.PositiveBigIntegerField(default=0)
    counted = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.day} {self.feature} {self.model}"


class DailyLatency(models.Model):
    """Latencies of a day's successful provider calls of one model, counted per millisecond."""

    day = models.DateField(db_index=True)
    model = models.CharField(max_length=100)
    latency = models.JSONField(default=dict, help_text="Milliseconds -> calls.")
    first_token = models.JSONField(default=dict, help_text="Milliseconds -> calls.")

    def __str__(self):
        return f"{self.day} {self.model}"


class RollupMark(models.Model):
    """The last complete day summed into the roll-ups (one row)."""

    rolled_through = models.DateField()

    def __str__(self):
        return f"rolled up through {self.rolled_through}"
