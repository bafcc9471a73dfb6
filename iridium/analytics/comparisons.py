"""What the spend buys: an experiment's variants side by side, and return on AI spend (cost
per conversation, per resolved ticket, support deflection).

Outcomes that only an app knows (whether a ticket was resolved, and by whom) come from the app:
it registers `outcomes(since)` for its feature from its AppConfig.ready, returning one
{"session_id", "outcome"} per object filed since then; outcome is "assistant" (resolved without a
person), "person" (resolved with one) or "open"."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Sum

from . import rollups, selectors
from .filters import NO_FILTERS, Filters

Outcomes = Callable[[datetime], list[dict]]
_outcomes: dict[str, Outcomes] = {}
OUTCOMES = {"assistant": "Resolved by the assistant alone", "person": "Resolved with a person",
            "open": "Not resolved yet"}  # fmt: skip


def register_outcomes(feature: str, outcomes: Outcomes) -> None:
    _outcomes[feature] = outcomes


def variants(*, since: datetime, filters: Filters = NO_FILTERS) -> list[dict]:
    """Each experiment variant in the period: requests, provider calls, spend, cost per call,
    error rate, latency p50 and p95 of successful calls, and the models it used. Complete days
    and hours come from the roll-ups, the rest from the raw rows, as on the dashboard."""
    rolled, raw, _ = selectors.period_parts(since, filters)
    raw = raw.exclude(variant="")
    found: dict[str, dict] = {}

    def add(row: dict) -> None:
        into = found.setdefault(
            row["variant"],
            {"variant": row["variant"], "requests": 0, "calls": 0, "errors": 0,
             "spend": Decimal(0), "models": set()},
        )  # fmt: skip
        for name in ("requests", "calls", "errors"):
            into[name] += row[name] or 0
        into["spend"] += Decimal(row["spend"] or 0)
        into["models"].add(row["model"])

    # One read of each, by variant and model.
    for row in (
        raw.values("variant", "model")
        .annotate(
            requests=Count("id"),
            calls=Count("id", filter=Q(cache_hit=False)),
            errors=Count("id", filter=Q(is_error=True)),
            spend=Sum("total_cost_usd"),
        )
        .order_by()
    ):
        add(row)
    for rows in rolled:
        for row in (
            rows.exclude(variant="")
            .values("variant", "model")
            .annotate(
                requests=Sum("requests"), calls=Sum("calls"), errors=Sum("errors"),
                spend=Sum("spend"),
            )
            .order_by()
        ):  # fmt: skip
            add(row)
    latency = selectors.latency_by("variant", since=since, filters=filters, first_token=False)
    out = []
    for variant in sorted(found):
        row = found[variant]
        row["models"] = sorted(row["models"])
        figures = latency.get(variant, {})
        row["p50"], row["p95"] = figures.get("p50"), figures.get("p95")
        row["cost_per_call"] = row["spend"] / row["calls"] if row["calls"] else None
        row["error_rate"] = row["errors"] / row["calls"] if row["calls"] else None
        out.append(row)
    return out


def _conversations(seen, *, several: bool) -> list[tuple[str, int]]:
    """(feature, conversations) of the ConversationSeen(By) rows `seen`. ConversationSeen has
    one row to a conversation, ConversationSeenBy `several`: those are counted as distinct
    (feature, key) pairs first, by hashing, where COUNT(DISTINCT) would sort every row."""
    if not several:
        return list(seen.values_list("feature").annotate(Count("key")).order_by())
    pairs, params = seen.values("feature", "key").distinct().order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pairs.feature, COUNT(*) FROM ({pairs}) AS pairs GROUP BY pairs.feature",
            params,
        )
        return cursor.fetchall()


def per_feature(*, since: datetime, filters: Filters = NO_FILTERS) -> list[dict]:
    """Per feature: spend, conversations, tickets or creations (`traces`: a session, or a
    trace that stands alone) and cost per one. Complete days and hours come from the roll-ups
    (spend from DailyUsage and HourlyUsage, the conversations last seen from ConversationSeen:
    on the period's first day or later, or, for a period that starts at an hour (the last 24
    hours), with their last call at that hour or later), the rest from the raw rows; a
    conversation seen in both counts once."""
    found = rollups.parts(since)
    rolled = [filters.usage(rows) for rows in rollups.usage_of(found)]
    raw = filters.rows(selectors.in_period(found.raw_since))
    spends: dict[str, Decimal] = {}
    traces: dict[str, int] = {}
    sums = {"spend": Sum("total_cost_usd")}
    if not found.rolled:
        sums["traces"] = Count(selectors.SESSION_OR_TRACE, distinct=True)
    else:
        seen = rollups.seen(since, filters)
        raw_keys = raw.annotate(key=selectors.SESSION_OR_TRACE)
        for row in (
            raw_keys.exclude(Exists(seen.filter(feature=OuterRef("feature"), key=OuterRef("key"))))
            .values("feature")
            .annotate(traces=Count("key", distinct=True))
            .order_by()
        ):
            traces[row["feature"]] = row["traces"]
        for feature, count in _conversations(seen, several=bool(filters)):
            traces[feature] = traces.get(feature, 0) + count
    for row in raw.values("feature").annotate(**sums).order_by():
        spends[row["feature"]] = Decimal(row["spend"] or 0)
        if not found.rolled:
            traces[row["feature"]] = row["traces"]
    for rows in rolled:
        for row in rows.values("feature").annotate(spend=Sum("spend")).order_by():
            spends[row["feature"]] = spends.get(row["feature"], Decimal(0)) + Decimal(
                row["spend"] or 0
            )
    out = []
    for feature, spend in spends.items():
        count = traces.get(feature, 0)
        out.append(
            {
                "feature": feature,
                "spend": spend,
                "traces": count,
                "per_trace": spend / count if count else None,
            }
        )
    return sorted(out, key=lambda row: (-row["spend"], row["feature"]))


def outcomes(*, since: datetime, filters: Filters = NO_FILTERS) -> list[dict]:
    """For each feature whose app reports outcomes: the objects filed in the period by path,
    the AI cost of each path (all the calls of their traces that pass the filters), the cost per
    resolved object and the share resolved without a person (deflection)."""
    from iridium.ai.models import Generation

    report = []
    for feature, read in sorted(_outcomes.items()):
        objects = read(since)
        by_trace = {row["session_id"]: row["outcome"] for row in objects}
        costs: dict[str, Decimal] = {}
        rows = filters.rows(Generation.objects.filter(session_id__in=list(by_trace)))
        for row in rows.values("session_id").annotate(spend=Sum("total_cost_usd")):
            costs[row["session_id"]] = Decimal(row["spend"] or 0)
        paths = []
        for outcome, label in OUTCOMES.items():
            traces = [trace for trace, found in by_trace.items() if found == outcome]
            spend = sum((costs.get(trace, Decimal(0)) for trace in traces), Decimal(0))
            paths.append(
                {
                    "outcome": outcome,
                    "label": label,
                    "count": len(traces),
                    "spend": spend,
                    "per_object": spend / len(traces) if traces else None,
                }
            )
        resolved = [path for path in paths if path["outcome"] != "open"]
        resolved_count = sum(path["count"] for path in resolved)
        resolved_spend = sum((path["spend"] for path in resolved), Decimal(0))
        report.append(
            {
                "feature": feature,
                "paths": paths,
                "resolved": resolved_count,
                "per_resolved": resolved_spend / resolved_count if resolved_count else None,
                "deflection": paths[0]["count"] / resolved_count if resolved_count else None,
            }
        )
    return report


def satisfaction(*, since: datetime, filters: Filters = NO_FILTERS) -> dict[str, list[dict]]:
    """People's thumbs on answers given or changed in the period, per feature, model and
    experiment variant: thumbs up, thumbs down, and the share up. The filters by feature, model,
    user and variant apply (feedback has no plan or organization of its own)."""
    from iridium.ai.models import Feedback

    lookups = {
        column: value
        for column, value in [("feature", filters.feature), ("model", filters.model),
                              ("user_id", filters.user), ("variant", filters.variant)]
        if value
    }  # fmt: skip
    rows = Feedback.objects.filter(updated_at__gte=since, **lookups)
    out = {}
    for key in ("feature", "model", "variant"):
        found = []
        for row in (
            rows.exclude(**{key: ""})
            .values(key)
            .annotate(
                up=Count("id", filter=Q(rating="up")), down=Count("id", filter=Q(rating="down"))
            )
            .order_by(key)
        ):
            total = row["up"] + row["down"]
            found.append({"key": row[key], "up": row["up"], "down": row["down"], "total": total,
                          "share_up": row["up"] / total if total else None})  # fmt: skip
        out[key] = found
    return out


def with_satisfaction(variants_rows: list[dict], by_variant: list[dict]) -> list[dict]:
    """The variants' rows with their share of thumbs up (None without feedback)."""
    shares = {row["key"]: row for row in by_variant}
    for row in variants_rows:
        found = shares.get(row["variant"])
        row["satisfaction"] = found["share_up"] if found else None
        row["ratings"] = found["total"] if found else 0
    return variants_rows
