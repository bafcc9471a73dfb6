from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce


class Console(models.Model):
    """No table: the console's permissions (iridium.analytics.access) hang on this model."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_console", "Can view the analytics console (figures, traces, export)"),
            ("view_ai_content", "Can view the prompts and answers of any trace"),
        ]

    def __str__(self):
        return "analytics console"


class AlertRule(models.Model):
    """A condition on the generation record that, when met, alerts people by email and webhook.

    Evaluated by `manage.py evaluate_alerts` (the periodic job, every minute; or by hand).
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

    def console_url(self) -> str:
        """The console's dashboard filtered to what the rule watches, over its window."""
        from urllib.parse import urlencode

        from django.urls import reverse

        minutes = self.window_minutes
        period = ("24h" if minutes <= 1440 else "7d" if minutes <= 7 * 1440
                  else "30d" if minutes <= 30 * 1440 else "90d")  # fmt: skip
        query = {"period": period}
        if self.feature:
            query["feature"] = self.feature
        if self.plan_id:
            query["plan"] = self.plan.slug
        if self.organization_id:
            query["organization"] = self.organization.slug
        if self.kind == self.Kind.ERROR_RATE:
            query["errors"] = "on"
        return f"{reverse('analytics:dashboard')}?{urlencode(query)}"


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


class Usage(models.Model):
    """The generation record summed by feature, model, plan, organization, user, experiment
    variant and whether the calls failed (the console's "errors only"): over a day
    (DailyUsage) or an hour (HourlyUsage)."""

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
    variant = models.CharField(max_length=100, blank=True, default="")
    is_error = models.BooleanField(default=False, help_text="The calls failed.")
    requests = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    unpriced = models.PositiveIntegerField(default=0)
    spend = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    saved = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    estimated = models.PositiveBigIntegerField(default=0)
    counted = models.PositiveBigIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0, help_text="Input tokens.")
    tokens_out = models.PositiveBigIntegerField(default=0, help_text="Output tokens.")

    class Meta:
        abstract = True


class DailyUsage(Usage):
    """The generation record summed by UTC day (and the columns of Usage).

    Written by `manage.py rollup_generations` for complete days; the console reads it for those
    days, HourlyUsage for the complete hours after them and the raw rows after those, so its
    figures stay exact and fast.
    """

    day = models.DateField(db_index=True)

    def __str__(self):
        return f"{self.day} {self.feature} {self.model}"


class HourlyUsage(Usage):
    """The generation record summed by hour (and the columns of Usage), for the hours of
    yesterday and today that are complete (RollupMark.hours_from to rolled_until): the console
    reads them for today, the last 24 hours and the part of a longer period after its
    rolled-up days. Written by the periodic job every hour; older hours are deleted (their days
    are in DailyUsage)."""

    hour = models.DateTimeField(db_index=True, help_text="The hour's start.")
    day = models.DateField(help_text="The day of the hour.")

    def __str__(self):
        return f"{self.hour} {self.feature} {self.model}"


class Latency(models.Model):
    """Latencies and times to first token of successful provider calls, as histograms of
    log-spaced buckets (iridium.analytics.histograms: within 1% of each duration), over a day
    (DailyLatency) or an hour (HourlyLatency).

    Kept per model, feature, experiment variant, plan and organization, and summed over any of
    the five as well (as SQL's GROUPING SETS; `by_model` false: every model summed, `model`
    empty), so that a period's percentiles, with any of these filters, per day, per model or per
    variant, add up at most a row per day (or hour) and key shown. One person's calls are few
    enough to be read raw, through an index that holds what the percentiles need
    (iridium.ai.models.Generation); an organization's may be a tenth of all.
    """

    model = models.CharField(max_length=100)
    feature = models.CharField(max_length=50, blank=True, default="")
    variant = models.CharField(max_length=100, blank=True, default="")
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    by_model = models.BooleanField(default=True, help_text="False: every model summed.")
    by_feature = models.BooleanField(default=True, help_text="False: every feature summed.")
    by_variant = models.BooleanField(default=True, help_text="False: every variant summed.")
    by_plan = models.BooleanField(default=True, help_text="False: every plan summed.")
    by_organization = models.BooleanField(
        default=True, help_text="False: every organization summed."
    )
    latency = models.JSONField(
        default=list, help_text="[first bucket, calls in it, in the next, ...] (histograms.pack)."
    )
    first_token = models.JSONField(default=list, help_text="As latency.")

    class Meta:
        abstract = True

    def _kept(self) -> str:
        kept = [
            name if on else "*"
            for name, on in [(self.model, self.by_model), (self.feature, self.by_feature),
                             (self.variant, self.by_variant),
                             (f"plan {self.plan_id or '-'}", self.by_plan),
                             (f"organization {self.organization_id or '-'}",
                              self.by_organization)]
        ]  # fmt: skip
        return " ".join(kept)


class DailyLatency(Latency):
    """A day's latency histograms (Latency)."""

    day = models.DateField(db_index=True)

    class Meta:
        indexes = [
            models.Index(
                fields=[
                    "by_model",
                    "by_feature",
                    "by_variant",
                    "by_plan",
                    "by_organization",
                    "day",
                ],
                name="dailylatency_kept_org",
            )
        ]

    def __str__(self):
        return f"{self.day} {self._kept()}".rstrip()


class HourlyLatency(Latency):
    """An hour's latency histograms (Latency), kept as HourlyUsage is."""

    hour = models.DateTimeField(help_text="The hour's start.")
    day = models.DateField(help_text="The day of the hour.")

    class Meta:
        indexes = [
            models.Index(
                fields=[
                    "by_model",
                    "by_feature",
                    "by_variant",
                    "by_plan",
                    "by_organization",
                    "hour",
                ],
                name="hourlylatency_kept_org",
            )
        ]

    def __str__(self):
        return f"{self.hour} {self._kept()}".rstrip()


class RollupMark(models.Model):
    """How far the roll-ups go (one row): the last complete day in DailyUsage and
    DailyLatency, and the complete hours in HourlyUsage and HourlyLatency (from `hours_from` to
    `rolled_until`, none while either is empty)."""

    rolled_through = models.DateField()
    hours_from = models.DateTimeField(null=True, blank=True)
    rolled_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"rolled up through {self.rolled_through}, hours until {self.rolled_until}"


class ConversationSeen(models.Model):
    """Each conversation, ticket or creation of a feature (its session, or the trace of a call
    that stands alone), the last UTC day it had a call among the days and hours rolled up, and
    the time of that call.

    Conversations span days, so a period's count cannot be summed from per-day counts; the
    conversations of a period that starts on day D are those last seen on D or after, plus those
    of the raw rows after the roll-ups; of a period that starts at an hour (the last 24 hours),
    those whose last call was at that hour or after, plus those of the raw rows. Read when no
    filter applies; ConversationSeenBy when one does. Written with the day and hour roll-ups.
    """

    feature = models.CharField(max_length=50)
    key = models.CharField(max_length=200, help_text="The session id, or the trace id.")
    last_day = models.DateField()
    last_call_at = models.DateTimeField(
        null=True, blank=True, help_text="Its last call rolled up (none: seen before 0016)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "feature"], name="conversationseen_unique")
        ]
        indexes = [
            models.Index(fields=["last_day", "feature"]),
            models.Index(fields=["last_call_at", "feature"], name="conversationseen_last_call"),
        ]

    def __str__(self):
        return f"{self.feature} {self.key} {self.last_day}"


UNIQUE_SEEN_BY = [
    models.F("key"), models.F("feature"), models.F("model"),
    Coalesce(models.F("plan"), models.Value(0)),
    Coalesce(models.F("organization"), models.Value(0)),
    Coalesce(models.F("user"), models.Value(0)), models.F("variant"), models.F("is_error"),
]  # fmt: skip


class ConversationSeenBy(models.Model):
    """ConversationSeen per model, plan, organization, user, experiment variant and whether the
    calls failed: what the console's filters select. A conversation has a row for each such
    combination it had calls with, and the last day (and call) of those calls rolled up.
    Deleting a user deletes their rows."""

    feature = models.CharField(max_length=50)
    key = models.CharField(max_length=200, help_text="The session id, or the trace id.")
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
    variant = models.CharField(max_length=100, blank=True, default="")
    is_error = models.BooleanField(default=False)
    last_day = models.DateField()
    last_call_at = models.DateTimeField(
        null=True, blank=True, help_text="Its last call rolled up (none: seen before 0016)."
    )

    class Meta:
        indexes = [
            models.Index(fields=["last_day", "feature"]),
            models.Index(fields=["last_call_at", "feature"], name="conversationseenby_last_call"),
        ]
        constraints = [
            # One row to a combination (no plan, organization or user as 0): the roll-up
            # upserts a day's conversations through it, without reading the whole table. It
            # serves the lookups by key too.
            models.UniqueConstraint(*UNIQUE_SEEN_BY, name="conversationseenby_unique")
        ]

    def __str__(self):
        return f"{self.feature} {self.key} {self.last_day}"
