"""The figures of the analytics console, straight from the generation record.

A generation row is one provider call, or one cache hit (`cache_hit`, cost 0): "calls" counts
provider calls, "requests" both. Percentiles are continuous (PostgreSQL's percentile_cont,
computed the same way in Python on other databases).
"""

import math
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from iridium.ai.models import Generation, Span

from . import rollups
from .models import DailyLatency

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


SUMMED = ["spend", "requests", "calls", "errors", "cache_hits", "saved", "unpriced", "estimated",
          "counted"]  # fmt: skip


def summary(*, since: datetime) -> dict:
    through, raw_since = rollups.split(since)
    figures = in_period(raw_since).aggregate(**rollups.USAGE_SUMS)
    if through is not None:
        rolled = rollups.usage(since, through).aggregate(**{k: Sum(k) for k in SUMMED})
        figures = {k: (figures[k] or 0) + (rolled[k] or 0) for k in SUMMED}
    figures = {k: figures[k] or 0 for k in SUMMED}
    figures["spend"] = Decimal(figures["spend"])
    figures["saved"] = Decimal(figures["saved"])
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
    through, raw_since = rollups.split(since)
    by_day: dict = {}
    if through is not None:
        for row in (
            rollups.usage(since, through)
            .values("day")
            .annotate(spend=Sum("spend"), calls=Sum("calls"))
        ):
            by_day[row["day"]] = row
    for row in (
        rollups.raw_days(in_period(raw_since))
        .values("day")
        .annotate(spend=Sum("total_cost_usd"), calls=Count("id", filter=Q(cache_hit=False)))
        .order_by("day")
    ):
        by_day[row["day"]] = row
    days, day = [], since.date()
    today = timezone.now().date()
    while day <= today:
        row = by_day.get(day, {})
        days.append(
            {"day": day, "spend": Decimal(row.get("spend") or 0), "calls": row.get("calls") or 0}
        )
        day += timedelta(days=1)
    return days


def breakdown(*, since: datetime, by: str) -> list[dict]:
    """Spend and calls by `feature`, `model` or `plan` (its name), most expensive first."""
    key = {"feature": "feature", "model": "model", "plan": "plan__name"}[by]
    through, raw_since = rollups.split(since)
    totals: dict = {}

    def add(name, spend, calls, requests):
        entry = totals.setdefault(name, {"name": name, "spend": Decimal(0), "calls": 0,
                                         "requests": 0})  # fmt: skip
        entry["spend"] += Decimal(spend or 0)
        entry["calls"] += calls or 0
        entry["requests"] += requests or 0

    if through is not None:
        rolled = rollups.usage(since, through).values(name=F(key))
        for row in rolled.annotate(s=Sum("spend"), c=Sum("calls"), r=Sum("requests")):
            add(row["name"], row["s"], row["c"], row["r"])
    raw = in_period(raw_since).values(name=F(key))
    for row in raw.annotate(
        s=Sum("total_cost_usd"), c=Count("id", filter=Q(cache_hit=False)), r=Count("id")
    ):
        add(row["name"], row["s"], row["c"], row["r"])
    return sorted(totals.values(), key=lambda e: (-e["spend"], str(e["name"])))


def top_users(*, since: datetime, limit: int = 10) -> list[dict]:
    through, raw_since = rollups.split(since)
    totals: dict = {}

    def add(user_id, username, spend, calls):
        entry = totals.setdefault(user_id, {"user_id": user_id, "username": username,
                                            "spend": Decimal(0), "calls": 0})  # fmt: skip
        entry["spend"] += Decimal(spend or 0)
        entry["calls"] += calls or 0

    if through is not None:
        rolled = rollups.usage(since, through).filter(user__isnull=False)
        for row in rolled.values("user_id", "user__username").annotate(
            s=Sum("spend"), c=Sum("calls")
        ):
            add(row["user_id"], row["user__username"], row["s"], row["c"])
    raw = in_period(raw_since).filter(user__isnull=False)
    for row in raw.values("user_id", "user__username").annotate(
        s=Sum("total_cost_usd"), c=Count("id", filter=Q(cache_hit=False))
    ):
        add(row["user_id"], row["user__username"], row["s"], row["c"])
    ranked = sorted(totals.values(), key=lambda e: (-e["spend"], e["user_id"]))
    return ranked[:limit]


def latency_by_model(*, since: datetime) -> list[dict]:
    """p50 and p95 latency, and p50 time to first token, per model (successful provider calls),
    to the millisecond: days already rolled up keep each call's latency in whole milliseconds."""
    through, raw_since = rollups.split(since)
    if through is None and connection.vendor == "postgresql":
        return _latency_postgresql(since)
    latency: dict[str, Counter] = {}
    first_token: dict[str, Counter] = {}
    if through is not None:
        for row in DailyLatency.objects.filter(day__gte=since.date(), day__lte=through):
            latency.setdefault(row.model, Counter()).update(
                {int(k): v for k, v in row.latency.items()}
            )
            first_token.setdefault(row.model, Counter()).update(
                {int(k): v for k, v in row.first_token.items()}
            )
    raw = in_period(raw_since).filter(cache_hit=False, is_error=False)
    for model, value, ttft in raw.values_list("model", "latency_ms", "time_to_first_token_ms"):
        latency.setdefault(model, Counter())[value if through is None else round(value)] += 1
        if ttft is not None:
            first_token.setdefault(model, Counter())[ttft if through is None else round(ttft)] += 1
    return [
        {
            "model": model,
            "calls": sum(counts.values()),
            "p50": percentile_of_counts(counts, 0.5),
            "p95": percentile_of_counts(counts, 0.95),
            "ttft_p50": percentile_of_counts(first_token.get(model, Counter()), 0.5),
        }
        for model, counts in sorted(latency.items())
    ]


def percentile_of_counts(counts: Counter, fraction: float) -> float | None:
    """`percentile` of a multiset given as value -> how many times, without expanding it."""
    total = sum(counts.values())
    if not total:
        return None
    position = fraction * (total - 1)
    lower_index, upper_index = math.floor(position), math.ceil(position)
    lower = upper = None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if lower is None and seen > lower_index:
            lower = value
        if seen > upper_index:
            upper = value
            break
    return lower + (upper - lower) * (position - lower_index)


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
    """The most recent traces (conversations, tickets, generations) with their cost, tokens,
    calls and span within the period. The newest rows are read first (by the created_at index)
    until `limit` traces are found; only those traces are then summed."""
    recent: list[str] = []
    seen: set[str] = set()
    rows = in_period(since).order_by("-created_at").values_list("trace_id", flat=True)
    offset, chunk = 0, 2000
    while len(recent) < limit:
        page = list(rows[offset : offset + chunk])
        if not page:
            break
        for trace_id in page:
            if trace_id not in seen:
                seen.add(trace_id)
                recent.append(trace_id)
                if len(recent) == limit:
                    break
        offset += chunk
    summed = {
        row["trace_id"]: row
        for row in in_period(since)
        .filter(trace_id__in=recent)
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
    }
    return [
        {**row, "cost": row["cost"] or Decimal(0), "duration": row["last"] - row["started"]}
        for row in (summed[trace_id] for trace_id in recent)
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
