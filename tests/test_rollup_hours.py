"""The hour roll-ups: the complete hours of yesterday and today summed as the days are, so the
console reads the raw rows of the hour under way only. Every figure with the hours rolled up
up to any hour is the figure of the raw rows (sums exactly, latency percentiles within 1%), with
each filter; the periodic job is incremental and idempotent."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from iridium.accounts.models import Organization
from iridium.ai.models import Generation
from iridium.analytics import comparisons, rollups, selectors
from iridium.analytics.filters import Filters
from iridium.analytics.models import HourlyLatency, HourlyUsage, RollupMark
from iridium.analytics.tasks import rollup_generations
from tests import factories

TABLE = Generation._meta.db_table
LATENCY = ("p50", "p95", "ttft_p50")


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query.format(table=TABLE), params)
        return cursor.fetchall()


@pytest.fixture
def hours(make_user):
    """A call every 13 minutes over the last three days (to the minute before now), by three
    people (one in an organization), three features, two models, two variants and none, with
    errors, cache hits and calls without a first token; conversations that span hours."""
    organization = Organization.objects.create(name="Globex", slug="globex")
    people = [make_user("alice"), make_user("bob", plan="pro"),
              make_user("carol", plan="enterprise", organization=organization)]  # fmt: skip
    # The tests compare the hours rolled up to `now` with pages that read the clock: an hour
    # turning in between changes which hour is under way, so a test starts after the turn.
    to_next_hour = 3600 - timezone.now().timestamp() % 3600
    if to_next_hour < 90:
        time.sleep(to_next_hour + 1)
    now = timezone.now()
    specs = []
    for index in range(3 * 24 * 60 // 13):
        person = people[index % 3]
        specs.append(
            factories.varied_call(
                index,
                person,
                created_at=now - timedelta(minutes=1 + 13 * index),
                organization=organization if index % 3 == 2 else None,
                estimated_input_tokens=90 + index % 20,
                session_id=f"conversation-{index % 7}" if index % 2 else "",
                trace_id=f"trace-{index // 3}",
            )
        )
    factories.create_generations(specs)
    return {"people": people, "organization": organization, "now": now}


def filter_cases(hours):
    alice, bob, _ = hours["people"]
    return {
        "none": Filters(),
        "feature": Filters(feature="chat"),
        "model": Filters(model="gpt-4o"),
        "plan": Filters(plan=bob.plan_id),
        "organization": Filters(organization=hours["organization"].pk),
        "user": Filters(user=alice.pk),
        "variant": Filters(variant="test"),
        "errors": Filters(errors=True),
        "model and variant": Filters(model="gpt-4o-mini", variant="control"),
    }


def figures(filters):
    """Every figure of the console's periods, as the selectors give them."""
    out = {}
    for period in ("today", "24h", "7d"):
        since = selectors.period_start(period)
        hourly = period != "7d"
        out[period] = {
            "summary": selectors.summary(since=since, filters=filters),
            "series": selectors.series(since=since, hourly=hourly, filters=filters),
            "dashboard": selectors.dashboard(since=since, hourly=hourly, filters=filters),
            "by": selectors.breakdowns(since=since, filters=filters),
            "latency": selectors.latency_by_model(since=since, filters=filters),
            "variants": comparisons.variants(since=since, filters=filters),
            "features": comparisons.per_feature(since=since, filters=filters),
        }
    return out


def norm(value):
    """Decimals to 10 places (SQLite sums decimals as floats), in any dict or list."""
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    if isinstance(value, Decimal):
        return value.quantize(Decimal("1e-10"))
    return value


def without_latency(rows):
    return norm([{k: v for k, v in row.items() if k not in LATENCY} for row in rows])


def assert_same(got, exact, where):
    """`got` (with roll-ups) is `exact` (from the raw rows): sums the same, percentiles within
    1% (the histograms')."""
    for name in ("summary", "by", "features"):
        assert norm(got[name]) == norm(exact[name]), (where, name)
    for name in ("series",):
        assert without_latency(got[name]) == without_latency(exact[name]), (where, name)
    assert without_latency(got["dashboard"]["rows"]) == without_latency(exact["series"]), where
    assert norm(got["dashboard"]["by"]) == norm(exact["by"]), where
    for mine, theirs in [
        *zip(got["series"], exact["series"], strict=True),
        *zip(got["dashboard"]["rows"], exact["series"], strict=True),
        *zip(got["latency"], exact["latency"], strict=True),
        *zip(got["dashboard"]["latency"], exact["latency"], strict=True),
    ]:
        assert mine.get("model") == theirs.get("model") and mine.get("calls") == theirs.get(
            "calls"
        ), where
        for name in LATENCY:
            if theirs[name] is None:
                assert mine[name] is None, (where, name)
            else:
                assert mine[name] == pytest.approx(theirs[name], rel=0.01), (where, name)
    assert [without_latency([row]) for row in got["variants"]] == [
        without_latency([row]) for row in exact["variants"]
    ], where
    for mine, theirs in zip(got["variants"], exact["variants"], strict=True):
        for name in ("p50", "p95"):
            if theirs[name] is None:
                assert mine[name] is None
            else:
                assert mine[name] == pytest.approx(theirs[name], rel=0.01), (where, name)


@pytest.mark.parametrize("back", [0, 1, 5, 13, 30], ids=lambda back: f"{back}h back")
def test_the_hours_rolled_up_to_any_hour_give_the_raw_rows_figures(hours, back):
    """Rolled up through yesterday by day, and by hour up to `back` hours before the hour under
    way (so the raw rows after them are an hour or more, today's or from yesterday): every
    figure of today, the last 24 hours and 7 days, with each filter, is the raw rows'."""
    cases = filter_cases(hours)
    exact = {name: figures(filters) for name, filters in cases.items()}
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"] - timedelta(hours=back))
    mark = RollupMark.objects.get()
    assert mark.rolled_until == rollups.hour_start(hours["now"] - timedelta(hours=back))
    assert HourlyUsage.objects.exists() and HourlyLatency.objects.exists()
    for name, filters in cases.items():
        got = figures(filters)
        for period in got:
            assert_same(got[period], exact[name][period], (name, period))
    # The summary against SQL written here as well: the sums are exact.
    since = selectors.period_start("today")
    [(requests, spend)] = sql(
        "SELECT COUNT(*), SUM(total_cost_usd) FROM {table} WHERE created_at >= %s", [since]
    )
    got = selectors.summary(since=since)
    assert norm([got["requests"], got["spend"]]) == norm([requests, Decimal(str(spend or 0))])


def test_the_hourly_parts(hours):
    """Today: the hours from midnight to the mark, then raw rows; 7 days: the days, the hours
    after them, the raw rows; 24 hours: hours only (yesterday's are kept). In today's first
    hour no hour of today is complete: today and the 7 days have none, only raw rows."""
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"])
    current = rollups.hour_start(hours["now"])
    midnight = selectors.period_start("today")
    todays_hours = None if current == midnight else (midnight, current)
    today = rollups.parts(midnight)
    assert today.through is None
    assert today.hours == todays_hours
    assert today.raw_since == current
    week = rollups.parts(selectors.period_start("7d"))
    assert week.through == timezone.localdate() - timedelta(days=1)
    assert week.hours == todays_hours
    assert week.raw_since == current
    last_day = rollups.parts(selectors.period_start("24h"))
    assert last_day.through is None and last_day.hours[0] == selectors.period_start("24h")


def test_the_job_is_incremental_and_idempotent(hours):
    now = hours["now"]
    rollups.rollup_new_days()
    first = rollups.rollup_new_hours(now=now - timedelta(hours=6))
    assert first > 0
    rows = sorted(HourlyUsage.objects.values_list("hour", "feature", "user_id", "requests"))
    # Again at the same hour: nothing to do, nothing changed.
    assert rollups.rollup_new_hours(now=now - timedelta(hours=6)) == 0
    assert sorted(HourlyUsage.objects.values_list("hour", "feature", "user_id", "requests")) == rows
    # Three hours later: those three hours only.
    start = rollups.hour_start(now - timedelta(hours=6))
    end = rollups.hour_start(now - timedelta(hours=3))
    written = rollups.rollup_new_hours(now=now - timedelta(hours=3))
    assert written == HourlyUsage.objects.filter(hour__gte=start, hour__lt=end).count() > 0
    assert HourlyUsage.objects.filter(hour__lt=start).count() == len(rows)
    incremental = sorted(HourlyUsage.objects.values_list("hour", "feature", "user_id", "requests"))
    latency = sorted(HourlyLatency.objects.values_list("hour", "model", "by_model", "latency"))
    # The same as rolling up those hours at once.
    RollupMark.objects.update(hours_from=None, rolled_until=None)
    rollups.rollup_new_hours(now=now - timedelta(hours=3))
    assert sorted(HourlyUsage.objects.values_list("hour", "feature", "user_id", "requests")) == (
        incremental
    )
    assert sorted(HourlyLatency.objects.values_list("hour", "model", "by_model", "latency")) == (
        latency
    )
    # Each hour's requests are its raw rows'.
    for hour, requests in HourlyUsage.objects.values_list("hour").annotate(Sum("requests")):
        assert (
            requests
            == Generation.objects.filter(
                created_at__gte=hour, created_at__lt=hour + timedelta(hours=1)
            ).count()
        )


def test_the_periodic_job_rolls_up_days_then_hours_and_forgets_older_hours(hours):
    assert rollup_generations.call() > 0
    mark = RollupMark.objects.get()
    midnight = selectors.period_start("today")
    assert mark.rolled_through == timezone.localdate() - timedelta(days=1)
    assert mark.hours_from == midnight - timedelta(days=1)
    assert mark.rolled_until == rollups.hour_start(timezone.now())
    assert not HourlyUsage.objects.filter(hour__lt=mark.hours_from).exists()
    # A day later (as the job would find it): yesterday's hours go, the day's rows stay.
    later = timezone.now() + timedelta(days=1)
    rollups.rollup_new_days(today=timezone.localdate(later))
    rollups.rollup_new_hours(now=later)
    mark = RollupMark.objects.get()
    assert mark.hours_from == midnight
    assert not HourlyUsage.objects.filter(hour__lt=midnight).exists()
    assert mark.rolled_through == timezone.localdate()


def test_a_page_adds_the_current_hours_rows_to_the_rolled_up_hours(hours, client, staff):
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"])
    since = selectors.period_start("today")
    before = selectors.summary(since=since)
    assert before["requests"] > 0
    # Calls in the hour under way (not rolled up), one of them in a new conversation.
    factories.create_generations(
        {"created_at": timezone.now(), "total_cost_usd": Decimal("0.5"), "feature": "chat",
         "trace_id": f"fresh-{n}", "session_id": "fresh"}
        for n in range(3)
    )  # fmt: skip
    after = selectors.summary(since=since)
    assert after["requests"] == before["requests"] + 3
    assert norm(after["spend"]) == norm(before["spend"] + Decimal("1.5"))
    rows = selectors.series(since=since, hourly=True)
    assert (
        rows[-1]["requests"]
        == Generation.objects.filter(created_at__gte=rollups.hour_start(timezone.now())).count()
    )
    [(conversations,)] = sql(
        "SELECT COUNT(DISTINCT COALESCE(NULLIF(session_id, ''), trace_id)) FROM {table}"
        " WHERE created_at >= %s AND feature = 'chat'",
        [since],
    )
    chat = next(row for row in comparisons.per_feature(since=since) if row["feature"] == "chat")
    assert chat["traces"] == conversations
    client.force_login(staff)
    for name in ("analytics:dashboard", "analytics:experiments", "analytics:traces"):
        for period in ("today", "24h", "7d"):
            response = client.get(reverse(name), {"period": period})
            assert response.status_code == 200, (name, period)


@pytest.mark.parametrize("back", [0, 4])
def test_conversations_over_rolled_up_hours_count_once(hours, back):
    """A conversation with calls in rolled-up hours and in the raw rows after them counts
    once; with each filter, for periods from today back to a week, and from an hour (the last
    24 hours)."""
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"] - timedelta(hours=back))
    bob = hours["people"][1]
    conditions = {
        "TRUE": Filters(),
        f"user_id = {bob.pk}": Filters(user=bob.pk),
        "feature = 'chat'": Filters(feature="chat"),
        "is_error": Filters(errors=True),
        "variant = 'control'": Filters(variant="control"),
    }
    midnight = selectors.period_start("today")
    current = rollups.hour_start(timezone.now())
    starts = [midnight - timedelta(days=days) for days in (0, 1, 2, 6)]
    # Periods that start at an hour: the last 24 hours, and from other hours rolled up (or not).
    starts += [selectors.period_start("24h")] + [current - timedelta(hours=h) for h in (2, 7, 30)]
    for since in starts:
        for condition, filters in conditions.items():
            expected = {
                feature: (Decimal(str(spend or 0)).quantize(Decimal("1e-10")), traces)
                for feature, spend, traces in sql(
                    "SELECT feature, SUM(total_cost_usd),"
                    " COUNT(DISTINCT COALESCE(NULLIF(session_id, ''), trace_id)) FROM {table}"
                    f" WHERE created_at >= %s AND {condition} GROUP BY feature",
                    [since],
                )
            }
            got = {
                row["feature"]: (row["spend"].quantize(Decimal("1e-10")), row["traces"])
                for row in comparisons.per_feature(since=since, filters=filters)
            }
            assert got == expected, (since, condition)


def test_rebuilding_the_days_keeps_the_conversations_seen_in_todays_hours(hours):
    """`rollup_generations --days N` rebuilds the days' conversations; those seen in today's
    rolled-up hours stay, so today's count stays exact."""
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"])
    since = selectors.period_start("today")
    before = comparisons.per_feature(since=since)
    rollups.rollup(days=3)
    assert norm(comparisons.per_feature(since=since)) == norm(before)


@pytest.mark.parametrize("period", ["24h", "today"])
def test_the_hourly_periods_read_the_hours_and_the_raw_rows_of_the_hour_under_way(hours, period):
    """Once the hours are rolled up, the raw rows before the hour under way are not read by
    any figure of the last 24 hours (or today) but the exact latencies of a user's or of
    errors only (`Filters.latency_rollups_ok`): the figures stay the same when those rows are
    gone (conversations included)."""
    rollups.rollup()
    rollups.rollup_new_hours(now=hours["now"])
    since = selectors.period_start(period)
    current = rollups.hour_start(hours["now"])
    assert rollups.parts(since).raw_since == current

    def read(filters):
        pages = {
            "summary": selectors.summary(since=since, filters=filters),
            "series": selectors.series(
                since=since, hourly=True, filters=filters, latency=filters.latency_rollups_ok
            ),
            "by": selectors.breakdowns(since=since, filters=filters),
            "features": comparisons.per_feature(since=since, filters=filters),
            "variants": comparisons.variants(since=since, filters=filters),
        }
        if filters.latency_rollups_ok:
            pages["latency"] = selectors.latency_by_model(since=since, filters=filters)
            pages["dashboard"] = selectors.dashboard(since=since, hourly=True, filters=filters)
        else:  # the latencies of a user, or of errors only, are read from the raw rows
            for row in pages["variants"]:
                row.pop("p50"), row.pop("p95")
        return norm(pages)

    cases = filter_cases(hours)
    before = {name: read(filters) for name, filters in cases.items()}
    assert before["none"]["summary"]["requests"] > 0 and before["none"]["features"]
    assert Generation.objects.filter(created_at__gte=current).exists()
    Generation.objects.filter(created_at__lt=current).delete()
    for name, filters in cases.items():
        assert read(filters) == before[name], name
