"""The figures of the analytics console, straight from the generation record.

A generation row is one provider call, or one cache hit (`cache_hit`, cost 0): "calls" counts
provider calls, "requests" both. Percentiles are continuous (PostgreSQL's percentile_cont,
computed the same way in Python on other databases).

Every figure takes the console's filters (iridium.analytics.filters). Whole days before the
last roll-up are read from the daily roll-ups, the complete hours after them from the hourly
roll-ups (both keep feature, model, plan, organization, user, variant and whether the calls
failed; latency when the filters allow it), the rest (the hour under way) from the raw rows
(iridium.analytics.rollups.parts).
"""

import math
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Max, Min, Q, Sum
from django.db.models.functions import TruncDate, TruncDay, TruncHour
from django.utils import timezone

from iridium.ai.models import Generation, Span

from . import histograms, rollups
from .filters import DEFAULT_PERIOD, NO_FILTERS, PERIODS, Filters
from .models import DailyLatency, HourlyLatency

__all__ = ["DEFAULT_PERIOD", "PERIODS"]

# A conversation, ticket or creation: its session, or the trace of a call that stands alone.
SESSION_OR_TRACE = rollups.SESSION_OR_TRACE


def period_start(period: str, now: datetime | None = None) -> datetime:
    now = now or timezone.localtime()
    if period == "24h":
        return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        return midnight
    days = int(period.rstrip("d")) if period in PERIODS else int(DEFAULT_PERIOD.rstrip("d"))
    return midnight - timedelta(days=days - 1)


def in_period(since: datetime):
    return Generation.objects.filter(created_at__gte=since)


def period_parts(since: datetime, filters: Filters, *, days: bool = True):
    """The period as (its roll-up rows: a list of the days' and the hours' querysets, its raw
    rows, its rollups.Parts), all filtered. Without `days`, hours and raw rows only (an hourly
    series)."""
    found = rollups.parts(since, days=days)
    rolled = [filters.usage(rows) for rows in rollups.usage_of(found)]
    return rolled, filters.rows(in_period(found.raw_since)), found


SUMMED = ["spend", "requests", "calls", "errors", "cache_hits", "saved", "unpriced", "estimated",
          "counted", "tokens_in", "tokens_out"]  # fmt: skip


def _figures(sums: dict) -> dict:
    figures = {k: sums.get(k) or 0 for k in SUMMED}
    figures["spend"] = Decimal(figures["spend"])
    figures["saved"] = Decimal(figures["saved"])
    figures["error_rate"] = _ratio(figures["errors"], figures["calls"])
    figures["cache_hit_rate"] = _ratio(figures["cache_hits"], figures["requests"])
    return figures


def summary(*, since: datetime, filters: Filters = NO_FILTERS) -> dict:
    rolled, raw, _ = period_parts(since, filters)
    figures = raw.aggregate(**rollups.USAGE_SUMS)
    for rows in rolled:
        summed = rows.aggregate(**{k: Sum(k) for k in SUMMED})
        figures = {k: (figures[k] or 0) + (summed[k] or 0) for k in SUMMED}
    figures = _figures(figures)
    # Token estimates: counted tokens per estimated token (1.0 = perfect), over calls with both.
    figures["estimate_ratio"] = (
        figures["counted"] / figures["estimated"] if figures["estimated"] else None
    )
    return figures


def summary_of(rows: list[dict]) -> dict:
    """`summary` of a period from its `series` (the same figures, without reading again)."""
    figures = _figures({k: sum(row[k] for row in rows) for k in SUMMED})
    figures["estimate_ratio"] = (
        figures["counted"] / figures["estimated"] if figures["estimated"] else None
    )
    return figures


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def buckets(*, since: datetime, hourly: bool, until: datetime | None = None) -> list[datetime]:
    """The hours (or days) from `since` to `until` (now by default), as the local moments they
    start."""
    now = timezone.localtime(until or timezone.now())
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    moment = timezone.localtime(since)
    out = []
    while moment <= now:
        out.append(moment)
        moment = timezone.localtime(moment + step)
        if not hourly:  # a day is midnight to midnight, whatever the clocks do
            moment = moment.replace(hour=0)
    return out


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile, `fraction` given when the query is written."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


NO_LATENCY = {"p50": None, "p95": None, "ttft_p50": None}


def series(
    *, since: datetime, hourly: bool = False, filters: Filters = NO_FILTERS, latency: bool = True
) -> list[dict]:
    """Per hour or per day from `since`: the summed figures of `summary`, and latency p50 and
    p95 and time to first token p50 of successful provider calls (None without `latency`)."""
    truncate = TruncHour if hourly else TruncDay
    rolled, raw, found = period_parts(since, filters, days=not hourly)
    sums: dict = {}
    column = "hour" if hourly else "day"
    for rows in rolled:
        for row in rows.values(column).annotate(**{k: Sum(k) for k in SUMMED}).order_by():
            _add(sums, _moment(row.pop(column)), row)
    for row in (
        raw.annotate(bucket=truncate("created_at"))
        .values("bucket")
        .annotate(**rollups.USAGE_SUMS)
        .order_by()
    ):
        _add(sums, timezone.localtime(row.pop("bucket")), row)
    latency = _latency_series(found, hourly, filters) if latency else {}
    return [
        {"start": moment, **_figures(sums.get(moment, {})), **latency.get(moment, NO_LATENCY)}
        for moment in buckets(since=since, hourly=hourly)
    ]


def _add(sums: dict, moment: datetime, row: dict) -> None:
    into = sums.get(moment)
    if into is None:
        sums[moment] = row
    else:
        for key, value in row.items():
            into[key] = (into.get(key) or 0) + (value or 0)


def _midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _moment(key) -> datetime:
    """A roll-up row's day (its midnight) or hour, as the local moment a series bucket starts."""
    if isinstance(key, datetime):
        return timezone.localtime(key)
    if isinstance(key, str):  # SQLite
        key = date.fromisoformat(key)
    return _midnight(key)


def rolled_latencies(
    found: rollups.Parts, filters: Filters, column: str, *, first_token: bool = True
) -> dict:
    """The latency roll-ups of a period's rolled-up days and hours (`found`) that pass
    `filters`, summed by `column` ("day", "hour", "model", "feature" or "variant"): key ->
    (latency, first-token) histograms. Reads the grouping set that keeps only the filtered
    columns and `column`: at most a row per day (or hour) and key (iridium.analytics.histograms:
    within 1%)."""
    kept = {name: bool(getattr(filters, name)) or column == name
            for name in rollups.LATENCY_DIMENSIONS}  # fmt: skip
    grouping = {f"by_{name}": on for name, on in kept.items()}
    sources = []
    if found.through is not None:
        assert column != "hour", "the day roll-ups have no hours"
        sources.append(
            DailyLatency.objects.filter(
                day__gte=found.since.date(), day__lte=found.through, **grouping
            )
        )
    if found.hours is not None:
        start, end = found.hours
        sources.append(HourlyLatency.objects.filter(hour__gte=start, hour__lt=end, **grouping))
    out: dict = {}
    for rows in sources:
        for key, latency, first in (
            filters.latency(rows)
            .values_list(column, "latency", "first_token" if first_token else "id")
            .order_by()
        ):
            into = out.get(key)
            if into is None:
                into = out[key] = (histograms.Histogram(), histograms.Histogram())
            into[0].add_packed(latency)
            if first_token:
                into[1].add_packed(first)
    return out


def _count_buckets(summed: dict, successful, key, *, first_token: bool = True) -> None:
    """Count `successful` raw rows into `summed`'s histograms (key -> (latency, first token)),
    by `key` (a column, or an expression annotated as "key") and bucket, in the database."""
    if not isinstance(key, str):
        successful, key = successful.annotate(key=key), "key"
    for index, duration in enumerate(["latency_ms", "time_to_first_token_ms"][: 1 + first_token]):
        for value, bucket, calls in (
            successful.filter(**{f"{duration}__isnull": False})
            .annotate(bucket=histograms.bucket_sql(duration))
            .values_list(key, "bucket")
            .annotate(calls=Count("*"))
            .order_by()
        ):
            if value not in summed:
                summed[value] = (histograms.Histogram(), histograms.Histogram())
            summed[value][index].add(int(bucket), calls)


def _latency_series(found: rollups.Parts, hourly: bool, filters: Filters) -> dict:
    if filters.errors:  # no successful call is an error: nothing to read
        return {}
    truncate = TruncHour if hourly else TruncDay
    out: dict = {}
    raw_since = found.since
    if found.rolled and filters.latency_rollups_ok:
        summed = rolled_latencies(found, filters, "hour" if hourly else "day")
        raw_since = found.raw_since
        if found.hours is not None and not hourly:
            # The day of the hours rolled up is theirs and the raw rows' after them: those
            # rows are counted into the same buckets (within 1%, as the roll-ups).
            successful = filters.rows(in_period(raw_since)).filter(cache_hit=False, is_error=False)
            _count_buckets(summed, successful, TruncDate("created_at"))
            raw_since = None
        for key, (latency, first) in summed.items():
            out[_moment(key)] = {
                "p50": latency.percentile(0.5),
                "p95": latency.percentile(0.95),
                "ttft_p50": first.percentile(0.5),
            }
        if raw_since is None:
            return out
    # The raw rows' own buckets (hours, or days after the rolled-up ones): exact.
    successful = filters.rows(in_period(raw_since)).filter(cache_hit=False, is_error=False)
    successful = successful.annotate(bucket=truncate("created_at"))
    if connection.vendor == "postgresql":
        for row in (
            successful.values("bucket")
            .annotate(
                p50=PercentileCont("latency_ms", 0.5),
                p95=PercentileCont("latency_ms", 0.95),
                ttft_p50=PercentileCont("time_to_first_token_ms", 0.5),
            )
            .order_by()
        ):
            out[timezone.localtime(row.pop("bucket"))] = row
        return out
    values: dict = {}
    for bucket, value, ttft in successful.values_list(
        "bucket", "latency_ms", "time_to_first_token_ms"
    ):
        latency, first = values.setdefault(timezone.localtime(bucket), ([], []))
        latency.append(value)
        if ttft is not None:
            first.append(ttft)
    for bucket, (latency, first) in values.items():
        out[bucket] = {
            "p50": percentile(latency, 0.5),
            "p95": percentile(latency, 0.95),
            "ttft_p50": percentile(first, 0.5),
        }
    return out


def dashboard(*, since: datetime, hourly: bool, filters: Filters = NO_FILTERS) -> dict:
    """The dashboard's figures: `series` (the charts and, summed, the totals), `breakdowns` and
    `latency_by_model`, with fewer reads of the raw rows: for a daily period with roll-ups (and
    filters the latency roll-ups keep), latency by model and the latency of the raw rows' days
    come from one count of those rows by day, model and bucket (within 1%, as the rolled-up
    days), not from percentile_cont per day and a count per model."""
    if not hourly and filters.latency_rollups_ok:
        rows = series(since=since, filters=filters, latency=False)
        found = rollups.parts(since)
        if found.rolled:
            latency, by_model = _daily_latency(found, filters)
            for row in rows:
                row.update(latency.get(row["start"], NO_LATENCY))
            return {
                "rows": rows,
                "by": breakdowns(since=since, filters=filters),
                "latency": [{"model": model, **figures} for model, figures in by_model.items()],
            }
    return {
        "rows": series(since=since, hourly=hourly, filters=filters),
        "by": breakdowns(since=since, filters=filters),
        "latency": latency_by_model(since=since, filters=filters),
    }


def _daily_latency(found: rollups.Parts, filters: Filters) -> tuple[dict, dict]:
    """`_latency_series` (per day) and `latency_by("model")` of a period with roll-ups: their
    histograms, and the raw rows after them counted by day, model and bucket."""
    if filters.errors:  # no successful call is an error: nothing to read
        return {}, {}
    per_day = rolled_latencies(found, filters, "day")
    per_model = rolled_latencies(found, filters, "model")
    raw_since = found.raw_since
    successful = filters.rows(in_period(raw_since)).filter(cache_hit=False, is_error=False)
    # The raw rows are today's unless the roll-ups are behind: then counted per day too.
    one_day = timezone.localtime(raw_since).date() >= timezone.localdate()
    for index, duration in enumerate(["latency_ms", "time_to_first_token_ms"]):
        counted = successful.filter(**{f"{duration}__isnull": False}).annotate(
            bucket=histograms.bucket_sql(duration)
        )
        columns = ["model", "bucket"]
        if not one_day:
            counted = counted.annotate(day=TruncDate("created_at"))
            columns.insert(0, "day")
        for row in counted.values(*columns).annotate(calls=Count("*")).order_by():
            day, model, bucket, calls = (
                row.get("day", timezone.localtime(raw_since).date()),
                row["model"],
                row["bucket"],
                row["calls"],
            )
            if isinstance(day, str):  # SQLite
                day = date.fromisoformat(day)
            for summed, key in [(per_day, day), (per_model, model)]:
                if key not in summed:
                    summed[key] = (histograms.Histogram(), histograms.Histogram())
                summed[key][index].add(int(bucket), calls)
    series = {
        _moment(day): {
            "p50": latency.percentile(0.5),
            "p95": latency.percentile(0.95),
            "ttft_p50": first.percentile(0.5),
        }
        for day, (latency, first) in per_day.items()
    }
    by_model = {
        model: {
            "calls": latency.total,
            "p50": latency.percentile(0.5),
            "p95": latency.percentile(0.95),
            "ttft_p50": first.percentile(0.5),
        }
        for model, (latency, first) in sorted(per_model.items())
    }
    return series, by_model


def spend_per_day(*, since: datetime, filters: Filters = NO_FILTERS) -> list[dict]:
    return [
        {"day": row["start"].date(), "spend": row["spend"], "calls": row["calls"]}
        for row in series(since=since, filters=filters)
    ]


GROUP_KEYS = ["feature", "model", "plan_id", "user_id"]


def _groups(since: datetime, filters: Filters) -> list[dict]:
    """Spend, calls and requests by feature, model, plan and user: one read of the roll-ups and
    one of the raw rows, from which every breakdown is summed."""
    rolled, raw, _ = period_parts(since, filters)
    groups = []
    for rows in rolled:
        groups += (
            rows.values(*GROUP_KEYS)
            .annotate(spend=Sum("spend"), calls=Sum("calls"), requests=Sum("requests"))
            .order_by()
        )
    groups += raw.values(*GROUP_KEYS).annotate(
        spend=Sum("total_cost_usd"), calls=Count("id", filter=Q(cache_hit=False)),
        requests=Count("id"),
    ).order_by()  # fmt: skip
    return groups


def breakdowns(*, since: datetime, filters: Filters = NO_FILTERS, top: int = 10) -> dict:
    """Spend, calls and requests by feature, by plan (its name) and by model, most expensive
    first; and the `top` users who cost most."""
    from iridium.accounts.models import Plan, User

    groups = _groups(since, filters)
    plan_names = dict(Plan.objects.values_list("pk", "name"))
    out = {}
    for by, key in [("feature", "feature"), ("plan", "plan_id"), ("model", "model"),
                    ("users", "user_id")]:  # fmt: skip
        totals: dict = {}
        for group in groups:
            name = group[key]
            if by == "plan" and name is not None:
                name = plan_names.get(name)
            if by == "users" and name is None:
                continue
            entry = totals.setdefault(
                name, {"name": name, "spend": Decimal(0), "calls": 0, "requests": 0}
            )
            entry["spend"] += Decimal(group["spend"] or 0)
            entry["calls"] += group["calls"] or 0
            entry["requests"] += group["requests"] or 0
        ordered = sorted(totals.values(), key=lambda e: (-e["spend"], str(e["name"])))
        out[by] = ordered
    users = out["users"][:top]
    names = dict(
        User.objects.filter(pk__in=[u["name"] for u in users]).values_list("pk", "username")
    )
    out["users"] = [
        {"user_id": u["name"], "username": names.get(u["name"], ""), "spend": u["spend"],
         "calls": u["calls"]}
        for u in sorted(users, key=lambda e: (-e["spend"], e["name"]))
    ]  # fmt: skip
    return out


def breakdown(*, since: datetime, by: str, filters: Filters = NO_FILTERS) -> list[dict]:
    """Spend and calls by `feature`, `model` or `plan` (its name), most expensive first."""
    return breakdowns(since=since, filters=filters)[by]


def top_users(*, since: datetime, limit: int = 10, filters: Filters = NO_FILTERS) -> list[dict]:
    return breakdowns(since=since, filters=filters, top=limit)["users"]


def latency_by_model(*, since: datetime, filters: Filters = NO_FILTERS) -> list[dict]:
    """p50 and p95 latency, and p50 time to first token, per model (successful provider calls):
    within 1% where the period has rolled-up days or hours (their histograms), exact
    otherwise."""
    return [
        {"model": model, **figures}
        for model, figures in latency_by("model", since=since, filters=filters).items()
    ]


def latency_by(
    column: str, *, since: datetime, filters: Filters = NO_FILTERS, first_token: bool = True
) -> dict:
    """`latency_by_model`'s figures keyed by `column` ("model", "feature" or "variant": what
    the latency roll-ups keep), in the order of the keys. Exact from the raw rows; within 1%
    (iridium.analytics.histograms) where the period has rolled-up days or hours. Without
    `first_token`,
    no ttft_p50 (one read fewer)."""
    if filters.errors:  # no successful call is an error: nothing to read
        return {}
    found = rollups.parts(since, rolled=filters.latency_rollups_ok)
    successful = filters.rows(in_period(found.raw_since)).filter(cache_hit=False, is_error=False)
    if not found.rolled and connection.vendor == "postgresql":
        return {
            row.pop(column): row
            for row in successful.values(column)
            .annotate(
                calls=Count("*"),
                p50=PercentileCont("latency_ms", 0.5),
                p95=PercentileCont("latency_ms", 0.95),
                ttft_p50=PercentileCont("time_to_first_token_ms", 0.5),
            )
            .order_by(column)
        }
    if not found.rolled:  # exact, from the raw rows
        latency: dict[str, list] = {}
        firsts: dict[str, list] = {}
        for key, value, ttft in successful.values_list(
            column, "latency_ms", "time_to_first_token_ms"
        ):
            latency.setdefault(key, []).append(value)
            if ttft is not None:
                firsts.setdefault(key, []).append(ttft)
        return {
            key: {
                "calls": len(values),
                "p50": percentile(values, 0.5),
                "p95": percentile(values, 0.95),
                "ttft_p50": percentile(firsts.get(key, []), 0.5),
            }
            for key, values in sorted(latency.items())
        }
    # Rolled-up days and hours from the roll-ups' histograms, the raw rows after them counted
    # into the same buckets in the database.
    summed = rolled_latencies(found, filters, column, first_token=first_token)
    _count_buckets(summed, successful, column, first_token=first_token)
    return {
        key: {
            "calls": latency.total,
            "p50": latency.percentile(0.5),
            "p95": latency.percentile(0.95),
            "ttft_p50": first.percentile(0.5) if first_token else None,
        }
        for key, (latency, first) in sorted(summed.items())
    }


def percentile(values: list[float], fraction: float) -> float | None:
    """Continuous percentile, as PostgreSQL's percentile_cont computes it."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def traces(
    *,
    since: datetime,
    until: datetime | None = None,
    filters: Filters = NO_FILTERS,
    limit: int = 100,
) -> list[dict]:
    """The most recent traces (conversations, tickets, generations) with a row that passes the
    filters in the period, with their cost, tokens, calls, errors and span in the period. The
    newest rows are read first (by the created_at index) until `limit` traces are found; only
    those traces are then summed."""
    period = in_period(since)
    if until is not None:
        period = period.filter(created_at__lt=until)
    recent: list[str] = []
    seen: set[str] = set()
    for start, end in _trace_windows(since, until, filters):
        window = Generation.objects.filter(created_at__gte=start)
        if end is not None:
            window = window.filter(created_at__lt=end)
        rows = filters.rows(window).order_by("-created_at").values_list("trace_id", flat=True)
        offset, chunk = 0, 2000
        while len(recent) < limit:
            page = list(rows[offset : offset + chunk])
            for trace_id in page:
                if trace_id not in seen:
                    seen.add(trace_id)
                    recent.append(trace_id)
                    if len(recent) == limit:
                        break
            if len(page) < chunk:
                break
            offset += chunk
        if len(recent) == limit:
            break
    summed = {
        row["trace_id"]: row
        for row in period.filter(trace_id__in=recent)
        .values("trace_id")
        .annotate(
            cost=Sum("total_cost_usd"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            calls=Count("id", filter=Q(cache_hit=False)),
            errors=Count("id", filter=Q(is_error=True)),
            started=Min("created_at"),
            last=Max("created_at"),
            feature=Max("feature"),
            session_id=Max("session_id"),
            username=Max("user__username"),
        )
    }
    return [
        {
            **row,
            "cost": row["cost"] or Decimal(0),
            "duration_ms": (row["last"] - row["started"]).total_seconds() * 1000,
        }
        for row in (summed[trace_id] for trace_id in recent)
    ]


def _trace_windows(since: datetime, until: datetime | None, filters: Filters) -> list[tuple]:
    """The parts of a period the trace list reads, newest first, as (start, end or None). With
    filters, a rolled-up hour (HourlyUsage) or day (DailyUsage; both keep every filtered
    column) without a call that passes them is left out: a filter that matches few rows does
    not read the period's every row looking for them, and the raw rows read whole are those
    after the roll-ups (the hour under way). Without filters, or before the roll-ups, the
    period in one part."""
    from .models import DailyUsage, HourlyUsage, RollupMark

    mark = RollupMark.objects.first()
    if not filters or mark is None:
        return [(since, until)]
    rolled_from = DailyUsage.objects.aggregate(oldest=Min("day"))["oldest"]
    _, after = rollups._day_bounds(mark.rolled_through)
    # The hours when they go on from the days (yesterday's and today's, up to the hour under
    # way); the days before them.
    hours = None
    if (
        mark.hours_from is not None
        and mark.rolled_until is not None
        and (mark.hours_from <= after <= mark.rolled_until)
    ):
        hours = (mark.hours_from, mark.rolled_until)
    raw_from, days_end = (hours[1], hours[0]) if hours else (after, after)

    def clipped(start, end):
        return max(start, since), min(end, until or end)

    windows = []
    if until is None or until > raw_from:
        windows.append((max(since, raw_from), until))
    if hours is not None:
        first, last = clipped(*hours)
        rolled = HourlyUsage.objects.filter(hour__gt=first - timedelta(hours=1), hour__lt=last)
        for hour in (
            filters.usage(rolled).values_list("hour", flat=True).distinct().order_by("-hour")
        ):
            start, end = clipped(hour, rollups._next_hour(hour))
            if start < end:
                windows.append((start, end))
    if rolled_from is None:
        return [*windows, clipped(since, days_end)]
    days = (
        filters.usage(
            DailyUsage.objects.filter(day__gte=since.date(), day__lte=mark.rolled_through)
        )
        .values_list("day", flat=True)
        .distinct()
        .order_by("-day")
    )
    for day in days:
        start, end = rollups._day_bounds(day)
        start, end = clipped(start, min(end, days_end))
        if start < end:
            windows.append((start, end))
    oldest, _ = rollups._day_bounds(rolled_from)
    if since < oldest:  # days the roll-ups no longer keep
        windows.append(clipped(since, oldest))
    return windows


def session(session_id: str) -> list[dict]:
    """A session's turns (the traces of a conversation's or ticket's answers), oldest first:
    each with its feature, models, calls, errors, tokens, cost, start and start-to-end time,
    and its author's feedback if any."""
    from iridium.ai.models import Feedback

    turns: dict[str, dict] = {}
    for row in (
        Generation.objects.filter(session_id=session_id)
        .order_by("created_at", "pk")
        .values(
            "trace_id", "created_at", "latency_ms", "feature", "model", "cache_hit",
            "is_error", "input_tokens", "output_tokens", "total_cost_usd", "variant",
        )
    ):  # fmt: skip
        end = row["created_at"] + timedelta(milliseconds=row["latency_ms"])
        turn = turns.setdefault(
            row["trace_id"],
            {"trace_id": row["trace_id"], "started": row["created_at"], "end": end,
             "feature": row["feature"], "models": [], "variant": row["variant"], "calls": 0,
             "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost": Decimal(0)},
        )  # fmt: skip
        turn["end"] = max(turn["end"], end)
        if row["model"] not in turn["models"]:
            turn["models"].append(row["model"])
        turn["calls"] += 0 if row["cache_hit"] else 1
        turn["errors"] += 1 if row["is_error"] else 0
        turn["input_tokens"] += row["input_tokens"]
        turn["output_tokens"] += row["output_tokens"]
        turn["cost"] += row["total_cost_usd"] or Decimal(0)
    ratings = dict(
        Feedback.objects.filter(trace_id__in=list(turns)).values_list("trace_id", "rating")
    )
    for turn in turns.values():
        turn["duration_ms"] = (turn["end"] - turn["started"]).total_seconds() * 1000
        turn["rating"] = ratings.get(turn["trace_id"], "")
    return list(turns.values())


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
    from iridium.accounts.models import Organization, Plan, User

    now = timezone.localtime(now or timezone.now())
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Complete days from the roll-ups, the days after from the raw rows.
    rolled, raw, _ = period_parts(month, NO_FILTERS)
    parts = [(raw, "total_cost_usd")] + [(rows, "spend") for rows in rolled]
    by_plan: Counter = Counter()
    by_organization: Counter = Counter()
    by_member: Counter = Counter()
    for rows, spend in parts:
        for plan_id, total in rows.values_list("plan_id").annotate(total=Sum(spend)).order_by():
            by_plan[plan_id] += total or 0
        for organization_id, total in (
            rows.filter(organization__isnull=False)
            .values_list("organization_id")
            .annotate(total=Sum(spend))
            .order_by()
        ):
            by_organization[organization_id] += total or 0
        for plan_id, user_id, total in (
            rows.filter(user__isnull=False)
            .values_list("plan_id", "user_id")
            .annotate(total=Sum(spend))
            .order_by()
        ):
            by_member[plan_id, user_id] += total or 0
    top_by_plan = {}
    for (plan_id, user_id), total in sorted(by_member.items(), key=lambda item: -item[1]):
        top_by_plan.setdefault(plan_id, {"user_id": user_id, "total": total})
    names = dict(
        User.objects.filter(pk__in=[top["user_id"] for top in top_by_plan.values()]).values_list(
            "pk", "username"
        )
    )
    for top in top_by_plan.values():
        top["user__username"] = names.get(top["user_id"], "")
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
