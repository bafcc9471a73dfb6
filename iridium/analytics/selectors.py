"""The figures of the analytics console, straight from the generation record.

A generation row is one provider call, or one cache hit (`cache_hit`, cost 0): "calls" counts
provider calls, "requests" both. Percentiles are continuous (PostgreSQL's percentile_cont,
computed the same way in Python on other databases).
"""

import math
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Generation, Span

PERIODS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days"}
DEFAULT_PERIOD = "30d"


def period_start(period: str, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        return midnight
    days = int(period.rstrip("d")) if period in PERIODS else int(DEFAULT_PERIOD.rstrip("d"))
    return midnight - timedelta(days=days - 1)


def in_period(since: datetime):
    return Generation.objects.filter(created_at__gte=since)


def summary(*, since: datetime) -> dict:
    figures = in_period(since).aggregate(
        spend=Sum("total_cost_usd"),
        requests=Count("id"),
        calls=Count("id", filter=Q(cache_hit=False)),
        errors=Count("id", filter=Q(is_error=True)),
        cache_hits=Count("id", filter=Q(cache_hit=True)),
        saved=Sum("saved_cost_usd"),
        unpriced=Count("id", filter=Q(total_cost_usd__isnull=True, is_error=False)),
        estimated=Sum("estimated_input_tokens", filter=Q(cache_hit=False, is_error=False)),
        counted=Sum(
            "input_tokens", filter=Q(cache_hit=False, is_error=False, estimated_input_tokens__gt=0)
        ),
    )
    figures["spend"] = figures["spend"] or Decimal(0)
    figures["saved"] = figures["saved"] or Decimal(0)
    figures["error_rate"] = _ratio(figures["errors"], figures["calls"])
    figures["cache_hit_rate"] = _ratio(figures["cache_hits"], figures["requests"])
    # Token estimates: counted tokens per estimated token (1.0 = perfect), over calls with both.
    figures["estimate_ratio"] = (
        figures["counted"] / figures["estimated"] if figures["estimated"] else None
    )
    return figures


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def spend_per_day(*, since: datetime) -> list[dict]:
    rows = (
        in_period(since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(spend=Sum("total_cost_usd"), calls=Count("id", filter=Q(cache_hit=False)))
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    days, day = [], since.date()
    today = timezone.now().date()
    while day <= today:
        row = by_day.get(day, {})
        days.append(
            {"day": day, "spend": row.get("spend") or Decimal(0), "calls": row.get("calls", 0)}
        )
        day += timedelta(days=1)
    return days


def breakdown(*, since: datetime, by: str) -> list[dict]:
    """Spend and calls by `feature`, `model` or `plan` (its name), most expensive first."""
    key = {"feature": "feature", "model": "model", "plan": "plan__name"}[by]
    rows = (
        in_period(since)
        .values(name=F(key))
        .annotate(
            spend=Sum("total_cost_usd"),
            calls=Count("id", filter=Q(cache_hit=False)),
            requests=Count("id"),
        )
        .order_by(F("spend").desc(nulls_last=True), "name")
    )
    return [{**row, "spend": row["spend"] or Decimal(0)} for row in rows]


def top_users(*, since: datetime, limit: int = 10) -> list[dict]:
    rows = (
        in_period(since)
        .filter(user__isnull=False)
        .values("user_id", username=F("user__username"))
        .annotate(spend=Sum("total_cost_usd"), calls=Count("id", filter=Q(cache_hit=False)))
        .order_by(F("spend").desc(nulls_last=True), "user_id")[:limit]
    )
    return [{**row, "spend": row["spend"] or Decimal(0)} for row in rows]


def latency_by_model(*, since: datetime) -> list[dict]:
    """p50 and p95 latency, and p50 time to first token, per model (provider calls only)."""
    calls = in_period(since).filter(cache_hit=False, is_error=False)
    if connection.vendor == "postgresql":
        return _latency_postgresql(since)
    by_model: dict[str, dict] = {}
    for model, latency, ttft in calls.values_list("model", "latency_ms", "time_to_first_token_ms"):
        entry = by_model.setdefault(model, {"latency": [], "ttft": []})
        entry["latency"].append(latency)
        if ttft is not None:
            entry["ttft"].append(ttft)
    return [
        {
            "model": model,
            "calls": len(values["latency"]),
            "p50": percentile(values["latency"], 0.5),
            "p95": percentile(values["latency"], 0.95),
            "ttft_p50": percentile(values["ttft"], 0.5),
        }
        for model, values in sorted(by_model.items())
    ]


def _latency_postgresql(since: datetime) -> list[dict]:
    table = Generation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT model, count(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_first_token_ms)
            FROM {table}
            WHERE created_at >= %s AND NOT cache_hit AND NOT is_error
            GROUP BY model ORDER BY model
            """,
            [since],
        )
        return [
            {"model": m, "calls": n, "p50": p50, "p95": p95, "ttft_p50": ttft}
            for m, n, p50, p95, ttft in cursor.fetchall()
        ]


def percentile(values: list[float], fraction: float) -> float | None:
    """Continuous percentile, as PostgreSQL's percentile_cont computes it."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def traces(*, since: datetime, limit: int = 100) -> list[dict]:
    """Traces (conversations, tickets, generations) with their cost, tokens, calls and span."""
    rows = (
        in_period(since)
        .values("trace_id")
        .annotate(
            cost=Sum("total_cost_usd"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            calls=Count("id", filter=Q(cache_hit=False)),
            started=Min("created_at"),
            last=Max("created_at"),
            feature=Max("feature"),
        )
        .order_by("-last")[:limit]
    )
    return [
        {**row, "cost": row["cost"] or Decimal(0), "duration": row["last"] - row["started"]}
        for row in rows
    ]


def trace(trace_id: str) -> list:
    """A trace's provider calls and tool steps, in order."""
    generations = list(Generation.objects.filter(trace_id=trace_id).select_related("user"))
    spans = list(Span.objects.filter(trace_id=trace_id))
    for generation in generations:
        generation.kind = "generation"
    for span in spans:
        span.kind = "span"
    return sorted([*generations, *spans], key=lambda item: (item.created_at, item.kind != "span"))


def budgets(now: datetime | None = None) -> dict:
    """Spend to date this month against every budget: per plan (its users), per organization."""
    from iridium.accounts.models import Organization, Plan

    now = now or timezone.now()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = Generation.objects.filter(created_at__gte=month)
    by_plan = dict(this_month.values_list("plan_id").annotate(total=Sum("total_cost_usd")))
    by_organization = dict(
        this_month.filter(organization__isnull=False)
        .values_list("organization_id")
        .annotate(total=Sum("total_cost_usd"))
    )
    top_by_plan = {}
    for row in (
        this_month.filter(user__isnull=False)
        .values("plan_id", "user_id", "user__username")
        .annotate(total=Sum("total_cost_usd"))
        .order_by("plan_id", F("total").desc(nulls_last=True))
    ):
        top_by_plan.setdefault(row["plan_id"], row)
    plans = []
    for plan in Plan.objects.annotate(members=Count("users")):
        top = top_by_plan.get(plan.pk)
        top_share = (
            (top["total"] or 0) / plan.monthly_budget_usd
            if top and plan.monthly_budget_usd
            else None
        )
        plans.append(
            {"plan": plan, "spend": by_plan.get(plan.pk) or Decimal(0), "top": top,
             "top_share": top_share}
        )  # fmt: skip
    organizations = [
        {
            "organization": organization,
            "spend": by_organization.get(organization.pk) or Decimal(0),
            "share": (
                (by_organization.get(organization.pk) or 0) / organization.monthly_budget_usd
                if organization.monthly_budget_usd
                else None
            ),
        }
        for organization in Organization.objects.select_related("plan")
    ]
    return {"month": month, "plans": plans, "organizations": organizations}
