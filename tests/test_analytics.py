"""The analytics console: every figure against SQL written here, straight from the table."""

import csv
import io
import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from iridium.ai.models import Generation
from iridium.analytics import rollups, selectors
from iridium.analytics.models import DailyUsage
from tests import factories

TABLE = Generation._meta.db_table


def dec(value) -> Decimal:
    """A database sum as an exact decimal (SQLite sums decimals as floats)."""
    return Decimal(str(value or 0)).quantize(Decimal("1e-10"))


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query.format(table=TABLE), params)
        return cursor.fetchall()


@pytest.fixture(params=["raw rows", "rolled up"])
def rows(request, generations):
    """The figures must be the same read from the raw rows or from the daily roll-ups."""
    if request.param == "rolled up":
        rollups.rollup()
        assert rollups.rolled_through() == timezone.now().date() - timedelta(days=1)
        assert DailyUsage.objects.exists()
    return generations


@pytest.fixture
def generations(make_user, plans):
    """A mixed month of calls, plus some older ones that no period includes."""
    alice = make_user("alice", plan="free")
    bob = make_user("bob", plan="pro")
    now = timezone.now()
    specs = []
    for index in range(60):
        specs.append(
            {
                "created_at": now - timedelta(days=index % 20, minutes=index),
                "user": alice if index % 3 else bob,
                "plan": plans["free"] if index % 3 else plans["pro"],
                "feature": ["chat", "customer-support", "code-generation"][index % 3],
                "model": ["gpt-4o-mini", "gpt-4o"][index % 2],
                "total_cost_usd": None if index == 7 else Decimal(index) / 1000,
                "latency_ms": 100.0 + (index * 37) % 900,
                "time_to_first_token_ms": None if index % 4 == 0 else 10.0 + index,
                "is_error": index % 11 == 0,
                "cache_hit": index % 9 == 0,
                "saved_cost_usd": Decimal("0.002") if index % 9 == 0 else None,
                "estimated_input_tokens": 100 + index,
                "input_tokens": 110 + index,
                "output_tokens": 50,
                "trace_id": f"conversation-{index % 5}",
            }
        )
    for index in range(5):  # older than 90 days
        specs.append(
            {
                "created_at": now - timedelta(days=200 + index),
                "user": alice,
                "plan": plans["free"],
                "feature": "chat",
                "model": "gpt-4o",
                "total_cost_usd": Decimal(5),
                "latency_ms": 1.0,
                "trace_id": "old",
            }
        )
    factories.create_generations(specs)
    return {"alice": alice, "bob": bob}


@pytest.fixture
def since():
    return selectors.period_start("30d")


def test_summary_matches_sql(rows, since):
    figures = selectors.summary(since=since)
    [(spend, requests, calls, errors, hits, saved)] = sql(
        "SELECT SUM(total_cost_usd), COUNT(*), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END),"
        " SUM(CASE WHEN is_error THEN 1 ELSE 0 END), SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END),"
        " SUM(saved_cost_usd) FROM {table} WHERE created_at >= %s",
        [since],
    )
    assert dec(figures["spend"]) == dec(spend)
    assert (figures["requests"], figures["calls"]) == (requests, calls)
    assert (figures["errors"], figures["cache_hits"]) == (errors, hits)
    assert dec(figures["saved"]) == dec(saved)
    assert figures["error_rate"] == errors / calls
    assert figures["cache_hit_rate"] == hits / requests
    [(counted, estimated)] = sql(
        "SELECT SUM(input_tokens), SUM(estimated_input_tokens) FROM {table}"
        " WHERE created_at >= %s AND NOT cache_hit AND NOT is_error"
        " AND estimated_input_tokens > 0",
        [since],
    )
    assert figures["estimate_ratio"] == counted / estimated
    assert figures["unpriced"] == 1


def test_old_calls_are_outside_every_period(rows):
    assert selectors.summary(since=selectors.period_start("90d"))["spend"] < Decimal(5)
    today = selectors.summary(since=selectors.period_start("today"))
    [(calls,)] = sql(
        "SELECT COUNT(*) FROM {table} WHERE created_at >= %s AND NOT cache_hit",
        [selectors.period_start("today")],
    )
    assert today["calls"] == calls


@pytest.mark.parametrize(("by", "column"), [("feature", "feature"), ("model", "model")])
def test_breakdowns_match_sql(rows, since, by, column):
    expected = {
        name: (dec(spend), calls)
        for name, spend, calls in sql(
            f"SELECT {column}, SUM(total_cost_usd), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END)"
            " FROM {table} WHERE created_at >= %s GROUP BY " + column,
            [since],
        )
    }
    got = {
        row["name"]: (row["spend"], row["calls"]) for row in selectors.breakdown(since=since, by=by)
    }
    assert got == expected
    spends = [row["spend"] for row in selectors.breakdown(since=since, by=by)]
    assert spends == sorted(spends, reverse=True)


def test_breakdown_by_plan_matches_sql(rows, since):
    expected = {
        name: dec(spend)
        for name, spend in sql(
            "SELECT p.name, SUM(g.total_cost_usd) FROM {table} g JOIN accounts_plan p"
            " ON p.id = g.plan_id WHERE g.created_at >= %s GROUP BY p.name",
            [since],
        )
    }
    assert {
        row["name"]: row["spend"] for row in selectors.breakdown(since=since, by="plan")
    } == expected


def test_top_users_match_sql(rows, since):
    expected = [
        (user_id, dec(spend))
        for user_id, spend in sql(
            "SELECT user_id, SUM(total_cost_usd) AS s FROM {table} WHERE created_at >= %s"
            " AND user_id IS NOT NULL GROUP BY user_id ORDER BY s DESC LIMIT 10",
            [since],
        )
    ]
    got = [(row["user_id"], dec(row["spend"])) for row in selectors.top_users(since=since)]
    assert got == expected
    assert selectors.top_users(since=since)[0]["username"] in ("alice", "bob")


def test_latency_percentiles_match_sql(rows, since):
    got = {row["model"]: row for row in selectors.latency_by_model(since=since)}
    for model in ("gpt-4o-mini", "gpt-4o"):
        latencies = [
            value
            for (value,) in sql(
                "SELECT latency_ms FROM {table} WHERE created_at >= %s AND model = %s"
                " AND NOT cache_hit AND NOT is_error",
                [since, model],
            )
        ]
        ttfts = [
            value
            for (value,) in sql(
                "SELECT time_to_first_token_ms FROM {table} WHERE created_at >= %s AND model = %s"
                " AND NOT cache_hit AND NOT is_error AND time_to_first_token_ms IS NOT NULL",
                [since, model],
            )
        ]
        # percentile_cont is the "inclusive" (linear interpolation) method. Rolled-up days come
        # from histograms of 1% buckets: within 1% (docs/console.md); raw rows exact.
        tolerance = 0.01 if rollups.rolled_through() else 1e-6
        assert got[model]["calls"] == len(latencies)
        assert got[model]["p50"] == pytest.approx(statistics.median(latencies), rel=tolerance)
        assert got[model]["p95"] == pytest.approx(
            statistics.quantiles(latencies, n=20, method="inclusive")[18], rel=tolerance
        )
        assert got[model]["ttft_p50"] == pytest.approx(statistics.median(ttfts), rel=tolerance)


def test_spend_per_day_matches_sql(rows, since):
    days = selectors.spend_per_day(since=since)
    assert len(days) == 30
    expected = {
        str(day)[:10]: dec(spend)
        for day, spend in sql(
            "SELECT DATE(created_at), SUM(total_cost_usd) FROM {table}"
            " WHERE created_at >= %s GROUP BY DATE(created_at)",
            [since],
        )
    }
    got = {
        str(row["day"]): row["spend"] for row in days if row["spend"] or str(row["day"]) in expected
    }
    assert got == expected
    assert sum(row["spend"] for row in days) == selectors.summary(since=since)["spend"]


def test_traces_match_sql(rows, since):
    expected = {
        trace_id: (dec(cost), count)
        for trace_id, cost, count in sql(
            "SELECT trace_id, SUM(total_cost_usd), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END)"
            " FROM {table} WHERE created_at >= %s GROUP BY trace_id",
            [since],
        )
    }
    got = {
        row["trace_id"]: (dec(row["cost"]), row["calls"]) for row in selectors.traces(since=since)
    }
    assert got == expected


# --- Pages ------------------------------------------------------------------------------------

PAGES = ["analytics:dashboard", "analytics:traces", "analytics:export", "analytics:budgets"]


@pytest.mark.parametrize("name", PAGES)
def test_console_needs_its_permission(client, user, name):
    """The full matrix of roles is in test_console_access.py."""
    assert client.get(reverse(name)).status_code == 302
    client.force_login(user)
    assert client.get(reverse(name)).status_code == 403


def test_trace_page(client, user, staff, rows):
    url = reverse("analytics:trace", args=["conversation-1"])
    client.force_login(user)
    assert client.get(url).status_code == 403
    client.force_login(staff)
    page = client.get(url)
    assert page.status_code == 200 and "gpt-4o" in page.content.decode()
    assert client.get(reverse("analytics:trace", args=["nothing-here"])).status_code == 404


@pytest.mark.parametrize("period", ["today", "7d", "30d", "90d", "bogus"])
def test_dashboard_renders_the_figures(client, staff, rows, period):
    client.force_login(staff)
    response = client.get(reverse("analytics:dashboard"), {"period": period})
    assert response.status_code == 200
    used = period if period in selectors.PERIODS else selectors.DEFAULT_PERIOD
    spend = selectors.summary(since=selectors.period_start(used))["spend"]
    html = response.content.decode()
    assert f"${spend:,.4f}" in html
    assert 'canvas data-chart="spend"' in html and 'id="console-chart-data"' in html


def test_export_is_the_periods_rows_without_content(client, staff, rows, since):
    client.force_login(staff)
    response = client.get(reverse("analytics:export"), {"period": "30d"})
    body = b"".join(response.streaming_content).decode()
    table = list(csv.reader(io.StringIO(body)))
    header, data = table[0], table[1:]
    assert "total_cost_usd" in header and "input" not in header and "output" not in header
    assert len(data) == Generation.objects.filter(created_at__gte=since).count()


def test_budgets_page_spend_matches_sql(client, staff, rows, plans, organization):
    from iridium.ai.models import FlagOverride

    FlagOverride.objects.create(key="ai-kill-switch", value="cheapest", updated_by=staff)
    month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    figures = {row["plan"].slug: row for row in selectors.budgets()["plans"]}
    for slug in ("free", "pro"):
        [(expected,)] = sql(
            "SELECT SUM(total_cost_usd) FROM {table} WHERE created_at >= %s AND plan_id = %s",
            [month, plans[slug].pk],
        )
        assert dec(figures[slug]["spend"]) == dec(expected)
        [(user_id, username, total)] = sql(
            "SELECT user_id, username, SUM(total_cost_usd) AS spent FROM {table}"
            " JOIN accounts_user ON accounts_user.id = user_id"
            " WHERE created_at >= %s AND {table}.plan_id = %s GROUP BY user_id, username"
            " ORDER BY spent DESC LIMIT 1",
            [month, plans[slug].pk],
        )
        top = figures[slug]["top"]
        assert (top["user_id"], top["user__username"]) == (user_id, username)
        assert dec(top["total"]) == dec(total)
    client.force_login(staff)
    html = client.get(reverse("analytics:budgets")).content.decode()
    assert "ai-kill-switch" in html and "cheapest" in html and staff.username in html
    assert "Globex" in html


def test_rollup_command_and_user_deletion(generations, capsys):
    from django.core.management import call_command

    call_command("rollup_generations", "--days", "30")
    assert "Rolled up 30 day(s)" in capsys.readouterr().out
    since = selectors.period_start("30d")
    before = selectors.summary(since=since)["spend"]
    generations["bob"].delete()  # the roll-ups forget him with his rows
    [(spend,)] = sql("SELECT SUM(total_cost_usd) FROM {table} WHERE created_at >= %s", [since])
    assert dec(selectors.summary(since=since)["spend"]) == dec(spend) < dec(before)
