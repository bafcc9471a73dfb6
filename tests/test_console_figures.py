"""Every figure and chart series of the console against SQL written here, with each filter,
read from the raw rows and from the daily roll-ups."""

import io
import json
import re
import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from iridium.accounts.models import Organization
from iridium.ai.models import Generation
from iridium.analytics import charts, rollups, selectors
from iridium.analytics.filters import NO_SUCH_USER, FilterForm, Filters
from iridium.analytics.formatting import duration
from iridium.analytics.models import DailyUsage
from tests import factories

TABLE = Generation._meta.db_table


def dec(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("1e-10"))


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query.format(table=TABLE), params)
        return cursor.fetchall()


@pytest.fixture
def world(make_user, plans):
    """Five weeks of calls by three people (one in an organization), three features, two
    models, an experiment with two variants, some errors and cache hits; a dozen calls today,
    in different hours."""
    organization = Organization.objects.create(name="Globex", slug="globex")
    alice = make_user("alice", plan="free")
    bob = make_user("bob", plan="pro")
    carol = make_user("carol", plan="enterprise", organization=organization)
    people = [alice, bob, carol]
    now = timezone.now()
    specs = []
    for index in range(240):
        person = people[index % 3]
        when = now - timedelta(days=index % 35, hours=(index * 7) % 24, minutes=index % 60)
        if index < 24:  # today, spread over the hours that have passed
            when = now - timedelta(minutes=(index * 37) % (now.hour * 60 + now.minute + 1))
        specs.append(
            factories.varied_call(
                index,
                person,
                created_at=when,
                organization=organization if person == carol else None,
                trace_id=f"conversation-{index % 40}",
            )
        )
    factories.create_generations(specs)
    return {"alice": alice, "bob": bob, "carol": carol, "organization": organization}


@pytest.fixture(params=["raw rows", "rolled up"])
def source(request, world):
    if request.param == "rolled up":
        rollups.rollup()
    return request.param


# Each filter as (Filters, the SQL condition that means the same).
def filter_cases(world):
    return {
        "none": (Filters(), "TRUE", []),
        "feature": (Filters(feature="chat"), "feature = %s", ["chat"]),
        "model": (Filters(model="gpt-4o"), "model = %s", ["gpt-4o"]),
        "plan": (Filters(plan=world["bob"].plan_id), "plan_id = %s", [world["bob"].plan_id]),
        "organization": (
            Filters(organization=world["organization"].pk),
            "organization_id = %s",
            [world["organization"].pk],
        ),
        "user": (Filters(user=world["alice"].pk), "user_id = %s", [world["alice"].pk]),
        "variant": (Filters(variant="test"), "variant = %s", ["test"]),
        "errors": (Filters(errors=True), "is_error", []),
        "model and variant": (
            Filters(model="gpt-4o-mini", variant="control"),
            "model = %s AND variant = %s",
            ["gpt-4o-mini", "control"],
        ),
    }


FILTERS = ["none", "feature", "model", "plan", "organization", "user", "variant", "errors",
           "model and variant"]  # fmt: skip


@pytest.fixture(params=FILTERS)
def case(request, world, source):
    return filter_cases(world)[request.param]


def day_expression():
    return "DATE(created_at)"


def hour_expression():
    if connection.vendor == "postgresql":
        return "date_trunc('hour', created_at)"
    return "strftime('%%Y-%%m-%%d %%H:00:00', created_at)"


def test_summary(case):
    filters, where, params = case
    since = selectors.period_start("30d")
    [(spend, requests, calls, errors, hits, saved, tin, tout)] = sql(
        "SELECT SUM(total_cost_usd), COUNT(*), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END),"
        " SUM(CASE WHEN is_error THEN 1 ELSE 0 END), SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END),"
        " SUM(saved_cost_usd), SUM(input_tokens), SUM(output_tokens)"
        f" FROM {{table}} WHERE created_at >= %s AND {where}",
        [since, *params],
    )
    got = selectors.summary(since=since, filters=filters)
    assert requests > 0
    assert dec(got["spend"]) == dec(spend)
    assert (got["requests"], got["calls"], got["errors"], got["cache_hits"]) == (
        requests, calls or 0, errors or 0, hits or 0)  # fmt: skip
    assert dec(got["saved"]) == dec(saved)
    assert (got["tokens_in"], got["tokens_out"]) == (tin, tout)
    assert got["error_rate"] == ((errors or 0) / calls if calls else None)
    assert got["cache_hit_rate"] == (hits or 0) / requests
    # the dashboard sums its series instead of reading again: the same figures
    assert selectors.summary_of(selectors.series(since=since, filters=filters)) == got


# Latency percentiles of rolled-up days come from histograms of 1% buckets: within 1% of the
# exact figure (docs/console.md). The raw rows' (today's, or every day's before a roll-up) are
# exact.
ROLLED_UP = 0.01


def close(exact, rolled_up: bool):
    """`exact` as the console must show it: to 1% from the roll-ups, exactly from raw rows."""
    if exact is None:
        return None
    return pytest.approx(exact, rel=ROLLED_UP) if rolled_up else pytest.approx(exact)


def _percentiles(values):
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]


def test_daily_series(case, source):
    filters, where, params = case
    since = selectors.period_start("30d")
    rows = selectors.series(since=since, hourly=False, filters=filters)
    assert len(rows) == 30
    by_day = {str(row["start"].date()): row for row in rows}
    expected = sql(
        f"SELECT {day_expression()}, SUM(total_cost_usd), COUNT(*),"
        " SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END), SUM(CASE WHEN is_error THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), SUM(saved_cost_usd), SUM(input_tokens),"
        f" SUM(output_tokens) FROM {{table}} WHERE created_at >= %s AND {where}"
        f" GROUP BY {day_expression()}",
        [since, *params],
    )
    seen = set()
    for day, spend, requests, calls, errors, hits, saved, tin, tout in expected:
        row = by_day[str(day)[:10]]
        seen.add(str(day)[:10])
        assert dec(row["spend"]) == dec(spend), day
        assert (row["requests"], row["calls"], row["errors"], row["cache_hits"]) == (
            requests, calls, errors, hits)  # fmt: skip
        assert dec(row["saved"]) == dec(saved)
        assert (row["tokens_in"], row["tokens_out"]) == (tin, tout)
        assert row["error_rate"] == (errors / calls if calls else None)
        assert row["cache_hit_rate"] == hits / requests
    for day, row in by_day.items():
        if day not in seen:
            assert row["requests"] == 0 and row["spend"] == 0 and row["p50"] is None
    latencies: dict = {}
    firsts: dict = {}
    for day, latency, first in sql(
        f"SELECT {day_expression()}, latency_ms, time_to_first_token_ms FROM {{table}}"
        f" WHERE created_at >= %s AND NOT cache_hit AND NOT is_error AND {where}",
        [since, *params],
    ):
        latencies.setdefault(str(day)[:10], []).append(latency)
        if first is not None:
            firsts.setdefault(str(day)[:10], []).append(first)
    today = str(timezone.localdate())
    for day, row in by_day.items():
        p50, p95 = _percentiles(latencies.get(day, []))
        # Complete days from the roll-ups' histograms where the filters allow (not by user,
        # nor errors only), today from the raw rows.
        rolled = source == "rolled up" and day < today and filters.latency_rollups_ok
        assert row["p50"] == close(p50, rolled) and row["p95"] == close(p95, rolled), day
        assert row["ttft_p50"] == close(_percentiles(firsts.get(day, []))[0], rolled), day


@pytest.mark.parametrize("hours", [False, True], ids=["raw rows", "hours rolled up"])
@pytest.mark.parametrize("period", ["today", "24h"])
def test_hourly_series(world, period, hours):
    """Per hour, against SQL: exact sums; latencies exact from the raw rows, to 1% from the
    hours rolled up (not the hour under way, nor with a user filter or errors only)."""
    current = rollups.hour_start(timezone.now())
    if hours:
        rollups.rollup()
        rollups.rollup_new_hours()
        found = rollups.parts(selectors.period_start(period))
        assert found.raw_since == current  # the hour under way, from the raw rows
        if found.hours is None:  # today, in its first hour: no complete hour to roll up yet
            assert period == "today" and current == selectors.period_start(period)
        else:
            assert found.hours[1] == current
    for name, (filters, where, params) in filter_cases(world).items():
        since = selectors.period_start(period)
        rows = selectors.series(since=since, hourly=True, filters=filters)
        assert len(rows) == (24 if period == "24h" else timezone.now().hour + 1)
        by_hour = {row["start"].strftime("%Y-%m-%d %H"): row for row in rows}
        expected = sql(
            f"SELECT {hour_expression()}, SUM(total_cost_usd), COUNT(*),"
            " SUM(CASE WHEN is_error THEN 1 ELSE 0 END), SUM(input_tokens)"
            f" FROM {{table}} WHERE created_at >= %s AND {where} GROUP BY {hour_expression()}",
            [since, *params],
        )
        assert sum(row["requests"] for row in rows) == sum(e[2] for e in expected), name
        assert selectors.summary_of(rows) == selectors.summary(since=since, filters=filters)
        for hour, spend, requests, errors, tin in expected:
            row = by_hour[str(hour)[:13].replace("T", " ")]
            assert (dec(row["spend"]), row["requests"], row["errors"], row["tokens_in"]) == (
                dec(spend), requests, errors, tin), (name, hour)  # fmt: skip
        latencies: dict = {}
        for hour, latency in sql(
            f"SELECT {hour_expression()}, latency_ms FROM {{table}} WHERE created_at >= %s"
            f" AND NOT cache_hit AND NOT is_error AND {where}",
            [since, *params],
        ):
            latencies.setdefault(str(hour)[:13].replace("T", " "), []).append(latency)
        for hour, values in latencies.items():
            p50, p95 = _percentiles(values)
            rolled = hours and filters.latency_rollups_ok and hour < current.strftime("%Y-%m-%d %H")
            assert by_hour[hour]["p50"] == close(p50, rolled), (name, hour)
            assert by_hour[hour]["p95"] == close(p95, rolled), (name, hour)


@pytest.mark.parametrize(("by", "column"), [("feature", "feature"), ("model", "model")])
def test_breakdowns(case, by, column):
    filters, where, params = case
    since = selectors.period_start("30d")
    expected = {
        name: (dec(spend), calls)
        for name, spend, calls in sql(
            f"SELECT {column}, SUM(total_cost_usd), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END)"
            f" FROM {{table}} WHERE created_at >= %s AND {where} GROUP BY {column}",
            [since, *params],
        )
    }
    got = {
        row["name"]: (dec(row["spend"]), row["calls"])
        for row in selectors.breakdown(since=since, by=by, filters=filters)
    }
    assert got == expected


def test_top_users(case):
    filters, where, params = case
    since = selectors.period_start("30d")
    expected = {
        user_id: dec(spend)
        for user_id, spend in sql(
            f"SELECT user_id, SUM(total_cost_usd) FROM {{table}} WHERE created_at >= %s"
            f" AND {where} GROUP BY user_id",
            [since, *params],
        )
    }
    got = {
        row["user_id"]: dec(row["spend"])
        for row in selectors.top_users(since=since, filters=filters)
    }
    assert got == expected


def test_latency_by_model(case, source):
    filters, where, params = case
    since = selectors.period_start("30d")
    got = {row["model"]: row for row in selectors.latency_by_model(since=since, filters=filters)}
    for model in ("gpt-4o-mini", "gpt-4o"):
        values = [
            v
            for (v,) in sql(
                f"SELECT latency_ms FROM {{table}} WHERE created_at >= %s AND model = %s"
                f" AND NOT cache_hit AND NOT is_error AND {where}",
                [since, model, *params],
            )
        ]
        if not values:
            assert model not in got
            continue
        firsts = [
            v
            for (v,) in sql(
                f"SELECT time_to_first_token_ms FROM {{table}} WHERE created_at >= %s"
                " AND model = %s AND NOT cache_hit AND NOT is_error"
                f" AND time_to_first_token_ms IS NOT NULL AND {where}",
                [since, model, *params],
            )
        ]
        p50, p95 = _percentiles(values)
        rolled = source == "rolled up" and filters.latency_rollups_ok
        assert got[model]["calls"] == len(values)
        assert got[model]["p50"] == close(p50, rolled) and got[model]["p95"] == close(p95, rolled)
        assert got[model]["ttft_p50"] == close(_percentiles(firsts)[0], rolled)


def test_the_filters_come_from_the_url(world, client, staff):
    form = FilterForm(
        {"period": "7d", "feature": "chat", "model": "gpt-4o", "plan": "pro",
         "organization": "globex", "user": "alice", "variant": "test", "errors": "on"}
    )  # fmt: skip
    assert form.selected_period == "7d"
    assert form.filters == Filters(
        feature="chat", model="gpt-4o", plan=world["bob"].plan_id,
        organization=world["organization"].pk, user=world["alice"].pk, variant="test",
        errors=True,
    )  # fmt: skip
    factories.create_generation(variant="brand-new")  # seen after the choices were kept
    assert FilterForm({"variant": "brand-new"}).filters == Filters(variant="brand-new")
    bad = FilterForm({"period": "5y", "feature": "nope", "user": "nobody", "plan": "gold"})
    assert bad.selected_period == "30d" and bad.filters == Filters()
    assert NO_SUCH_USER in bad.errors["user"]
    client.force_login(staff)
    html = client.get(reverse("analytics:dashboard"), {"user": "nobody"}).content.decode()
    assert NO_SUCH_USER in html


def test_the_dashboard_shows_the_filtered_figures_and_series(world, client, staff):
    client.force_login(staff)
    response = client.get(reverse("analytics:dashboard"), {"period": "7d", "feature": "chat"})
    html = response.content.decode()
    filters = Filters(feature="chat")
    since = selectors.period_start("7d")
    summary = selectors.summary(since=since, filters=filters)
    assert summary["spend"] != selectors.summary(since=since)["spend"]  # the filter matters
    assert f'data-testid="total-spend">${summary["spend"]:,.4f}<' in html
    data = response.context["chart_data"]
    assert json.loads(json.dumps(data)) == data  # what json_script writes
    rows = selectors.series(since=since, filters=filters)
    spend = next(chart for chart in data["charts"] if chart["id"] == "spend")
    assert spend["series"][0]["values"] == [round(float(row["spend"]), 6) for row in rows]
    assert len(data["labels"]) == 7 == len(data["titles"])
    for chart in charts.CHARTS:
        assert f'canvas data-chart="{chart.id}"' in html
        assert f"Table: {chart.title.lower()}" in html
    # The period links keep the filters.
    assert "?period=30d&amp;feature=chat" in html
    # A breakdown's rows narrow the view to themselves.
    assert 'href="?period=7d&amp;feature=chat&amp;model=gpt-4o">gpt-4o<' in html


def test_the_export_takes_the_filters(world, client, staff):
    client.force_login(staff)
    response = client.get(reverse("analytics:export"), {"period": "30d", "model": "gpt-4o",
                                                         "errors": "on"})  # fmt: skip
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    [(expected,)] = sql(
        "SELECT COUNT(*) FROM {table} WHERE created_at >= %s AND model = %s AND is_error",
        [selectors.period_start("30d"), "gpt-4o"],
    )
    assert expected > 0 and len(lines) - 1 == expected


@pytest.mark.parametrize(
    ("value", "printed"),
    [(0, "0 ms"), (0.4, "0.40 ms"), (404.377, "404 ms"), (1500, "1.50 s"),
     (timedelta(seconds=0.404377), "404 ms"), (timedelta(minutes=2, seconds=5), "2 min 5 s"),
     (None, "—")],
)  # fmt: skip
def test_durations_are_printed_in_ms_or_s(value, printed):
    assert duration(value) == printed


def test_no_raw_timedelta_on_the_pages(world, client, staff):
    client.force_login(staff)
    for url in (reverse("analytics:dashboard"), reverse("analytics:traces"),
                reverse("analytics:trace", args=["conversation-1"])):  # fmt: skip
        html = client.get(url).content.decode()
        # A raw timedelta reads "0:00:00.404377"; a time of day such as 00:00:15 is fine.
        assert not re.search(r"(?<![\d:])\d+:\d\d:\d\d\.\d+", html), url
        assert not re.search(r"(?<![\d:])\d:\d\d:\d\d(?!\d)", html), url


@pytest.mark.parametrize("period", ["today", "24h", "7d", "30d"])
def test_the_dashboard_reads_the_same_figures_fewer_times(case, source, period):
    """`selectors.dashboard` (the page's one call) gives `series`, `breakdowns` and
    `latency_by_model`'s figures; the latency of the raw rows' days, where the period has
    rolled-up days, from buckets: to 1%, as the rolled-up days'."""
    filters = case[0]
    since = selectors.period_start(period)
    hourly = period in ("today", "24h")
    got = selectors.dashboard(since=since, hourly=hourly, filters=filters)
    rows = selectors.series(since=since, hourly=hourly, filters=filters)
    latency = ("p50", "p95", "ttft_p50")
    assert [{k: v for k, v in row.items() if k not in latency} for row in got["rows"]] == [
        {k: v for k, v in row.items() if k not in latency} for row in rows
    ]
    rolled = source == "rolled up" and not hourly
    for mine, theirs in zip(got["rows"], rows, strict=True):
        for name in latency:
            assert mine[name] == close(theirs[name], rolled), (mine["start"], name)
    assert got["by"] == selectors.breakdowns(since=since, filters=filters)
    by_model = selectors.latency_by_model(since=since, filters=filters)
    assert [row["model"] for row in got["latency"]] == [row["model"] for row in by_model]
    for mine, theirs in zip(got["latency"], by_model, strict=True):
        assert mine["calls"] == theirs["calls"]
        for name in latency:
            assert mine[name] == close(theirs[name], rolled), (mine["model"], name)


def test_the_dashboard_when_the_roll_ups_are_behind(world):
    """Rolled up through four days ago: the raw rows' days are counted day by day."""
    rollups.rollup(today=timezone.localdate() - timedelta(days=3))
    since = selectors.period_start("30d")
    for filters in (Filters(), Filters(model="gpt-4o", variant="test")):
        got = selectors.dashboard(since=since, hourly=False, filters=filters)
        rows = selectors.series(since=since, filters=filters)
        for mine, theirs in zip(got["rows"], rows, strict=True):
            for name in ("p50", "p95", "ttft_p50"):
                assert mine[name] == close(theirs[name], True), (mine["start"], name)
        by_model = selectors.latency_by_model(since=since, filters=filters)
        assert [(r["model"], r["calls"]) for r in got["latency"]] == [
            (r["model"], r["calls"]) for r in by_model
        ]
        for mine, theirs in zip(got["latency"], by_model, strict=True):
            assert mine["p95"] == close(theirs["p95"], True)


def test_rolling_up_the_last_days_again_keeps_the_earlier_ones(world):
    """`rollup_generations --days 7` rebuilds the last seven days and keeps the roll-ups of the
    days before (within the 90 kept): the console reads those days from them alone."""
    rollups.rollup()
    since = selectors.period_start("30d")
    before = selectors.series(since=since, filters=Filters())
    call_command("rollup_generations", "--days", "7", stdout=io.StringIO())
    assert selectors.series(since=since, filters=Filters()) == before
    assert DailyUsage.objects.filter(day__lt=timezone.localdate() - timedelta(days=7)).exists()


def test_rolling_up_the_last_days_also_rolls_up_the_days_missing_before_them(world):
    """Rolled up through eleven days ago, then `--days 7`: the days in between are rolled up
    too, not left out of the console (which reads every day up to the mark from roll-ups)."""
    since = selectors.period_start("30d")
    raw = selectors.series(since=since, filters=Filters())  # nothing rolled up yet
    rollups.rollup(today=timezone.localdate() - timedelta(days=10))
    call_command("rollup_generations", "--days", "7", stdout=io.StringIO())
    assert rollups.rolled_through() == timezone.localdate() - timedelta(days=1)
    latency = ("p50", "p95", "ttft_p50")
    got = selectors.series(since=since, filters=Filters())
    assert [{k: v for k, v in row.items() if k not in latency} for row in got] == [
        {k: v for k, v in row.items() if k not in latency} for row in raw
    ]
    for mine, theirs in zip(got, raw, strict=True):
        for name in latency:
            assert mine[name] == close(theirs[name], True), (mine["start"], name)
