"""Evaluating alert rules on the generation record, and telling people when one fires.

Each rule measures one value over its window; it fires when the value passes its threshold, the
window held at least `min_calls` calls, and it has not fired within its cool-down. A fired alert
is stored, emailed (Django's mail) and posted to the rule's webhook (Slack-compatible JSON,
retried); a failing delivery is logged and recorded, never stops the run.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from iridium.accounts.models import User
from iridium.ai.models import Generation

from .models import AlertRule, FiredAlert
from .selectors import percentile

logger = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0


@dataclass
class Measure:
    value: Decimal
    calls: int
    message: str


def evaluate_all(now: datetime | None = None) -> list[FiredAlert]:
    now = now or timezone.now()
    fired = []
    for rule in AlertRule.objects.filter(active=True).select_related("plan", "organization"):
        try:
            alert = evaluate(rule, now)
        except Exception:
            logger.exception("alert rule %s could not be evaluated", rule.pk)
            continue
        if alert is not None:
            fired.append(alert)
    return fired


def evaluate(rule: AlertRule, now: datetime) -> FiredAlert | None:
    if FiredAlert.objects.filter(
        rule=rule, fired_at__gt=now - timedelta(minutes=rule.cooldown_minutes)
    ).exists():
        return None
    measure = MEASURES[rule.kind](rule, now)
    if measure is None or measure.calls < rule.min_calls or measure.value <= rule.threshold:
        return None
    alert = FiredAlert.objects.create(rule=rule, value=measure.value, message=measure.message)
    deliver(alert)
    return alert


def _calls(rule: AlertRule, since: datetime):
    calls = Generation.objects.filter(created_at__gte=since, cache_hit=False)
    if rule.feature:
        calls = calls.filter(feature=rule.feature)
    if rule.plan_id:
        calls = calls.filter(plan_id=rule.plan_id)
    if rule.organization_id:
        calls = calls.filter(organization_id=rule.organization_id)
    return calls


def _window(rule: AlertRule, now: datetime) -> datetime:
    return now - timedelta(minutes=rule.window_minutes)


def _spend(rule, now):
    figures = _calls(rule, _window(rule, now)).aggregate(
        spend=Sum("total_cost_usd"), calls=Count("id")
    )
    spend = figures["spend"] or Decimal(0)
    return Measure(
        spend,
        figures["calls"],
        f"Spend of ${spend:.4f} in the last {rule.window_minutes} minutes "
        f"(threshold ${rule.threshold}).",
    )


def _latency_avg(rule, now):
    figures = (
        _calls(rule, _window(rule, now))
        .filter(is_error=False)
        .aggregate(average=Avg("latency_ms"), calls=Count("id"))
    )
    if not figures["calls"]:
        return None
    seconds = Decimal(str(figures["average"] / 1000)).quantize(Decimal("0.000001"))
    return Measure(
        seconds,
        figures["calls"],
        f"Average latency {seconds:.3f} s (threshold {rule.threshold} s).",
    )


def _latency_p95(rule, now):
    latencies = list(
        _calls(rule, _window(rule, now)).filter(is_error=False).values_list("latency_ms", flat=True)
    )
    if not latencies:
        return None
    seconds = Decimal(str(percentile(latencies, 0.95) / 1000)).quantize(Decimal("0.000001"))
    return Measure(
        seconds, len(latencies), f"p95 latency {seconds:.3f} s (threshold {rule.threshold} s)."
    )


def _error_rate(rule, now):
    figures = _calls(rule, _window(rule, now)).aggregate(
        calls=Count("id"), errors=Count("id", filter=Q(is_error=True))
    )
    if not figures["calls"]:
        return None
    percent = (Decimal(figures["errors"]) * 100 / figures["calls"]).quantize(Decimal("0.01"))
    return Measure(
        percent,
        figures["calls"],
        f"Error rate {percent}% ({figures['errors']} of {figures['calls']} calls; "
        f"threshold {rule.threshold}%).",
    )


def _spike(rule, now):
    last_hour = _calls(rule, now - timedelta(hours=1)).count()
    trailing = (
        _calls(rule, _window(rule, now)).filter(created_at__lt=now - timedelta(hours=1)).count()
    )
    hours = max(1, rule.window_minutes // 60 - 1)
    average = Decimal(trailing) / hours
    if not average:
        return Measure(Decimal(0), last_hour, "No trailing traffic to compare with.")
    times = (Decimal(last_hour) / average).quantize(Decimal("0.01"))
    return Measure(
        times,
        last_hour,
        f"{last_hour} calls in the last hour, {times} times the trailing hourly average "
        f"of {average:.1f} (threshold {rule.threshold}x).",
    )


def _budget(rule, now):
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if rule.organization_id and rule.organization.monthly_budget_usd:
        budget = rule.organization.monthly_budget_usd
        spent = Generation.objects.filter(
            organization_id=rule.organization_id, created_at__gte=month
        ).aggregate(total=Sum("total_cost_usd"))["total"] or Decimal(0)
        percent = (spent * 100 / budget).quantize(Decimal("0.01"))
        return Measure(
            percent,
            0,
            f"{rule.organization} has used {percent}% of its ${budget} monthly budget.",
        )
    if rule.plan_id and rule.plan.monthly_budget_usd:
        budget = rule.plan.monthly_budget_usd
        users = User.objects.filter(plan_id=rule.plan_id)
        spend = (
            Generation.objects.filter(user__in=users, created_at__gte=month)
            .values("user__username")
            .annotate(total=Sum("total_cost_usd"))
            .order_by("-total")
        )
        top = spend.first()
        if top is None or not top["total"]:
            return Measure(Decimal(0), 0, "")
        percent = (top["total"] * 100 / budget).quantize(Decimal("0.01"))
        over = [
            row["user__username"] for row in spend if row["total"] * 100 / budget >= rule.threshold
        ]
        return Measure(
            percent,
            0,
            f"On the {rule.plan} plan, {', '.join(over)} used up to {percent}% of the "
            f"${budget} monthly budget.",
        )
    return None


MEASURES = {
    AlertRule.Kind.SPEND: _spend,
    AlertRule.Kind.LATENCY_AVG: _latency_avg,
    AlertRule.Kind.LATENCY_P95: _latency_p95,
    AlertRule.Kind.ERROR_RATE: _error_rate,
    AlertRule.Kind.SPIKE: _spike,
    AlertRule.Kind.BUDGET: _budget,
}


def deliver(alert: FiredAlert) -> None:
    rule = alert.rule
    errors = []
    subject = f"[Iridium alert] {rule.name}"
    recipients = [address.strip() for address in rule.emails.split(",") if address.strip()]
    if recipients:
        try:
            send_mail(subject, alert.message, settings.DEFAULT_FROM_EMAIL, recipients)
            alert.emailed = True
        except Exception as error:
            logger.warning("alert %s: email failed: %s", alert.pk, error)
            errors.append(f"email: {error}")
    if rule.webhook_url:
        error = _post_webhook(rule.webhook_url, {"text": f"{subject}: {alert.message}"})
        if error is None:
            alert.webhook_delivered = True
        else:
            errors.append(f"webhook: {error}")
    alert.delivery_error = "\n".join(errors)
    alert.save(update_fields=["emailed", "webhook_delivered", "delivery_error"])


def _post_webhook(url: str, payload: dict) -> str | None:
    """Post, retrying with backoff; the last error, or None when delivered."""
    last_error = None
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT)
            response.raise_for_status()
            return None
        except httpx.HTTPError as error:
            last_error = f"{type(error).__name__}: {error}"
            logger.warning("alert webhook attempt %d failed: %s", attempt + 1, last_error)
            if attempt + 1 < WEBHOOK_ATTEMPTS:
                time.sleep(0.2 * 2**attempt)
    return last_error
