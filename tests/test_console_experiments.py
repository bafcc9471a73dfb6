"""Experiment variants side by side and return on AI spend, against SQL written here."""

import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from iridium.ai.models import Generation
from iridium.analytics import comparisons, rollups, selectors
from iridium.analytics.filters import Filters
from iridium.analytics.models import ConversationSeen, ConversationSeenBy
from support.models import Ticket, TicketMessage
from tests import factories

TABLE = Generation._meta.db_table


def dec(value) -> Decimal:
    """A sum as an exact decimal (SQLite sums decimals as floats)."""
    return Decimal(str(value or 0)).quantize(Decimal("1e-10"))


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query.format(table=TABLE), params)
        return cursor.fetchall()


@pytest.fixture
def experiment(make_user):
    alice, bob = make_user("alice"), make_user("bob", plan="pro")
    now = timezone.now()
    factories.create_generations(
        {
            "created_at": now - timedelta(days=index % 10, minutes=index),
            "user": [alice, bob][index % 2],
            "plan": [alice, bob][index % 2].plan,
            "feature": ["chat", "code-generation"][index % 2],
            "variant": ["", "control", "test"][index % 3],
            "model": {0: "gpt-4o-mini", 1: "gpt-4o-mini", 2: "gpt-4.1-mini"}[index % 3],
            "latency_ms": float(100 + (index * 53) % 1000),
            "total_cost_usd": Decimal(index % 5 + 1) / 1000,
            "is_error": index % 8 == 0,
            "cache_hit": index % 10 == 0,
            "trace_id": f"conversation-{index % 30}",
        }
        for index in range(150)
    )
    return {"alice": alice, "bob": bob}


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw rows", "rolled up"])
@pytest.mark.parametrize("filtered", ["none", "user", "feature"])
def test_variants_side_by_side(experiment, filtered, rolled_up):
    if rolled_up:  # complete days from the roll-ups, today from the raw rows
        rollups.rollup()
    since = selectors.period_start("30d")
    filters, condition = {
        "none": (Filters(), "TRUE"),
        "user": (Filters(user=experiment["bob"].pk), f"user_id = {experiment['bob'].pk}"),
        "feature": (Filters(feature="chat"), "feature = 'chat'"),
    }[filtered]
    got = {row["variant"]: row for row in comparisons.variants(since=since, filters=filters)}
    assert set(got) == {"control", "test"}
    for variant, calls, errors, spend in sql(
        "SELECT variant, SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END),"
        " SUM(CASE WHEN is_error THEN 1 ELSE 0 END), SUM(total_cost_usd) FROM {table}"
        f" WHERE created_at >= %s AND variant <> '' AND {condition} GROUP BY variant",
        [since],
    ):
        row = got[variant]
        assert (row["calls"], row["errors"]) == (calls, errors)
        assert row["spend"] == pytest.approx(Decimal(str(spend)))
        assert row["cost_per_call"] == pytest.approx(Decimal(str(spend)) / calls)
        assert row["error_rate"] == errors / calls
        latencies = [
            value
            for (value,) in sql(
                "SELECT latency_ms FROM {table} WHERE created_at >= %s AND variant = %s"
                f" AND NOT cache_hit AND NOT is_error AND {condition}",
                [since, variant],
            )
        ]
        # Rolled-up days' latencies come from histograms of 1% buckets: within 1% of the
        # exact figure (docs/console.md); without roll-ups, or filtered by user, exact.
        tolerance = 0.01 if rolled_up and filters.latency_rollups_ok else 1e-6
        assert row["p50"] == pytest.approx(statistics.median(latencies), rel=tolerance)
        assert row["p95"] == pytest.approx(
            statistics.quantiles(latencies, n=20, method="inclusive")[18], rel=tolerance
        )
    assert got["test"]["models"] == ["gpt-4.1-mini"]


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw rows", "rolled up"])
def test_variants_of_errors_only(experiment, rolled_up):
    """Errors only: the failed calls by variant, with their models; no latency (no failed call
    is a successful one)."""
    if rolled_up:
        rollups.rollup()
    since = selectors.period_start("30d")
    got = {
        row["variant"]: row
        for row in comparisons.variants(since=since, filters=Filters(errors=True))
    }
    expected = sql(
        "SELECT variant, COUNT(*), SUM(CASE WHEN cache_hit THEN 0 ELSE 1 END), SUM(total_cost_usd)"
        " FROM {table} WHERE created_at >= %s AND variant <> '' AND is_error GROUP BY variant",
        [since],
    )
    assert set(got) == {variant for variant, *_ in expected}
    for variant, requests, calls, spend in expected:
        row = got[variant]
        assert (row["requests"], row["calls"], row["errors"]) == (requests, calls, requests)
        assert dec(row["spend"]) == dec(spend)
        assert (row["p50"], row["p95"]) == (None, None)
        assert row["models"] == [
            model
            for (model,) in sql(
                "SELECT DISTINCT model FROM {table} WHERE created_at >= %s AND variant = %s"
                " AND is_error ORDER BY model",
                [since, variant],
            )
        ]


def test_cost_per_trace_per_feature(experiment):
    since = selectors.period_start("7d")
    expected = {
        feature: (dec(spend), traces)
        for feature, spend, traces in sql(
            "SELECT feature, SUM(total_cost_usd), COUNT(DISTINCT trace_id) FROM {table}"
            " WHERE created_at >= %s GROUP BY feature",
            [since],
        )
    }
    got = comparisons.per_feature(since=since)
    assert {row["feature"]: (dec(row["spend"]), row["traces"]) for row in got} == expected
    for row in got:
        assert row["per_trace"] == row["spend"] / row["traces"]


@pytest.fixture
def tickets(make_user):
    customer = make_user("carol")
    agent = make_user("dana", is_staff=True)
    made = {}
    for name, status, fields in [
        ("ai-only", "resolved", {}),
        ("ai-only-closed", "closed", {}),
        ("assigned", "resolved", {"assigned_to": agent}),
        ("asked-for-a-person", "closed", {"needs_human": True}),
        ("agent-replied", "resolved", {}),
        ("open", "open", {}),
    ]:
        ticket = factories.ticket(customer, title=name)
        Ticket.objects.filter(pk=ticket.pk).update(status=status, **fields)
        made[name] = ticket
    TicketMessage.objects.create(
        ticket=made["agent-replied"], kind="agent", author=agent, content="Done."
    )
    for index, ticket in enumerate(made.values()):
        for step in range(index + 1):
            factories.create_generation(
                trace_id=f"{ticket.ai_session_id}-{step}", session_id=ticket.ai_session_id,
                user=customer, feature="customer-support",
                total_cost_usd=Decimal(step + 1) / 100,
            )  # fmt: skip
    return made


def test_support_deflection_and_the_cost_of_each_path(tickets):
    [report] = [
        r for r in comparisons.outcomes(since=selectors.period_start("30d"))
        if r["feature"] == "customer-support"
    ]  # fmt: skip
    paths = {path["outcome"]: path for path in report["paths"]}

    def cost(names):
        traces = [tickets[name].ai_session_id for name in names]
        [(spend,)] = sql(
            "SELECT SUM(total_cost_usd) FROM {table} WHERE session_id IN ("
            + ", ".join(["%s"] * len(traces))
            + ")",
            traces,
        )
        return dec(spend)

    groups = {
        "assistant": ["ai-only", "ai-only-closed"],
        "person": ["assigned", "asked-for-a-person", "agent-replied"],
        "open": ["open"],
    }
    for outcome, names in groups.items():
        assert paths[outcome]["count"] == len(names)
        assert dec(paths[outcome]["spend"]) == cost(names)
        assert paths[outcome]["per_object"] == pytest.approx(cost(names) / len(names))
    assert report["resolved"] == 5
    assert report["deflection"] == 2 / 5
    assert report["per_resolved"] == pytest.approx(
        (cost(groups["assistant"]) + cost(groups["person"])) / 5
    )


def test_the_page(client, staff, experiment, tickets):
    client.force_login(staff)
    html = client.get(reverse("analytics:experiments"), {"period": "30d"}).content.decode()
    assert 'data-testid="variants"' in html and ">control</a>" in html and ">test</a>" in html
    assert 'data-testid="deflection">40.0%<' in html
    assert "Resolved by the assistant alone" in html


@pytest.fixture
def conversations(make_user):
    """Conversations, tickets and stand-alone traces over the last nine days and today, most
    of them with calls on several days (and some across features, users, models, variants)."""
    alice, bob = make_user("alice"), make_user("bob", plan="pro")
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for index in range(120):
        day = index % 10  # 0 is today
        session = "" if index % 5 == 0 else f"session-{index % 13}"
        rows.append(
            {
                "created_at": midnight - timedelta(days=day) + timedelta(seconds=1 + index * 60),
                "session_id": session,
                "trace_id": f"trace-{index % 7}" if not session else f"{session}-{index}",
                "user": [alice, bob, None][index % 3],
                "plan": [alice.plan, bob.plan, None][index % 3],
                "feature": ["chat", "customer-support", "code-generation"][
                    (index % 13 if session else index) % 3
                ],
                "model": ["gpt-4o-mini", "gpt-4.1-mini"][index % 2],
                "variant": ["", "control", "test"][index % 4 % 3],
                "is_error": index % 6 == 0,
                "total_cost_usd": Decimal(index % 7 + 1) / 1000,
            }
        )
    # A conversation across two days, both rolled up; one across yesterday and today.
    for day, session in [(3, "two-days"), (2, "two-days"), (1, "into-today"), (0, "into-today")]:
        rows.append({"created_at": midnight - timedelta(days=day) + timedelta(hours=5),
                     "session_id": session, "trace_id": f"{session}-{day}", "user": alice,
                     "plan": alice.plan, "total_cost_usd": Decimal("0.01")})  # fmt: skip
    factories.create_generations(rows)
    return {"alice": alice, "bob": bob, "midnight": midnight}


def expected_per_feature(since, condition="TRUE"):
    return {
        feature: (dec(spend), traces)
        for feature, spend, traces in sql(
            "SELECT feature, SUM(total_cost_usd),"
            " COUNT(DISTINCT COALESCE(NULLIF(session_id, ''), trace_id)) FROM {table}"
            f" WHERE created_at >= %s AND {condition} GROUP BY feature",
            [since],
        )
    }


def got_per_feature(since, filters=None):
    return {
        row["feature"]: (dec(row["spend"]), row["traces"])
        for row in comparisons.per_feature(since=since, filters=filters or Filters())
    }


@pytest.mark.parametrize(
    "filtered",
    ["none", "user", "feature", "model", "variant", "plan", "errors", "feature and errors"],
)
def test_conversations_per_feature_from_the_roll_ups(conversations, filtered):
    """Complete days from the roll-ups, today from the raw rows: a conversation counts once
    in a period, whatever days of it are rolled up."""
    rollups.rollup()
    bob = conversations["bob"]
    filters, condition = {
        "none": (Filters(), "TRUE"),
        "user": (Filters(user=bob.pk), f"user_id = {bob.pk}"),
        "feature": (Filters(feature="chat"), "feature = 'chat'"),
        "model": (Filters(model="gpt-4.1-mini"), "model = 'gpt-4.1-mini'"),
        "variant": (Filters(variant="control"), "variant = 'control'"),
        "plan": (Filters(plan=bob.plan_id), f"plan_id = {bob.plan_id}"),
        "errors": (Filters(errors=True), "is_error"),
        "feature and errors": (
            Filters(feature="chat", errors=True),
            "feature = 'chat' AND is_error",
        ),
    }[filtered]
    midnight = conversations["midnight"]
    for days in (0, 1, 2, 3, 5, 9, 30):
        since = midnight - timedelta(days=days)
        assert got_per_feature(since, filters) == expected_per_feature(since, condition), days
    since = selectors.period_start("24h")  # not at midnight: no days, the raw rows
    assert got_per_feature(since, filters) == expected_per_feature(since, condition)
    # With the hours rolled up: the conversations whose last call rolled up is in the period,
    # and those of the raw rows after the hours.
    rollups.rollup_new_hours()
    assert rollups.parts(since).hours is not None
    for since in [selectors.period_start("24h"), rollups.hour_start(timezone.now()),
                  midnight - timedelta(hours=18), midnight + timedelta(hours=4)]:  # fmt: skip
        assert got_per_feature(since, filters) == expected_per_feature(since, condition), since


def test_the_roll_ups_keep_the_last_day_a_conversation_was_seen(conversations):
    midnight = conversations["midnight"]
    rollups.rollup()
    seen = {key: day for key, day in ConversationSeen.objects.values_list("key", "last_day")}
    assert seen["two-days"] == (midnight - timedelta(days=2)).date()
    assert seen["into-today"] == (midnight - timedelta(days=1)).date()
    last_call = dict(ConversationSeen.objects.values_list("key", "last_call_at"))
    assert last_call["two-days"] == midnight - timedelta(days=2) + timedelta(hours=5)
    # Rolling up an earlier day again does not take a conversation back to it.
    rollups.rollup_day((midnight - timedelta(days=3)).date())
    assert ConversationSeen.objects.get(key="two-days").last_day == seen["two-days"]
    assert not ConversationSeenBy.objects.filter(last_day__gte=midnight.date()).exists()
    assert ConversationSeen.objects.get(key="two-days").last_call_at == last_call["two-days"]
    # The hours rolled up see today's call of "into-today" (at 05:00: the hours are rolled up
    # to 06:00, so that the test holds before five in the morning too).
    rollups.rollup_new_hours(now=midnight + timedelta(hours=6))
    found = ConversationSeen.objects.get(key="into-today")
    assert (found.last_day, found.last_call_at) == (midnight.date(), midnight + timedelta(hours=5))
    assert ConversationSeenBy.objects.get(key="into-today").last_call_at == found.last_call_at


def test_the_periodic_job_rolls_up_conversations_day_by_day(conversations):
    """Day after day, as the periodic job runs: the same roll-ups as all at once."""
    today = conversations["midnight"].date()
    for offset in range(12, -1, -1):
        rollups.rollup_new_days(today=today - timedelta(days=offset))
    columns = ["feature", "key", "model", "plan_id", "organization_id", "user_id", "variant",
               "is_error", "last_day"]  # fmt: skip
    daily = sorted(ConversationSeenBy.objects.values_list(*columns), key=str)
    coarse = sorted(ConversationSeen.objects.values_list("feature", "key", "last_day"))
    for offset in (0, 1, 2, 3, 8):
        since = conversations["midnight"] - timedelta(days=offset)
        assert got_per_feature(since) == expected_per_feature(since)
    rollups.rollup()
    assert sorted(ConversationSeenBy.objects.values_list(*columns), key=str) == daily
    assert sorted(ConversationSeen.objects.values_list("feature", "key", "last_day")) == coarse


def test_a_deleted_users_conversations_leave_the_roll_ups(conversations):
    rollups.rollup()
    rollups.rollup_new_hours()
    alice = conversations["alice"]
    assert ConversationSeen.objects.filter(key="two-days").exists()
    pk = alice.pk
    alice.delete()
    assert not ConversationSeenBy.objects.filter(user_id=pk).exists()
    assert not ConversationSeen.objects.filter(key="two-days").exists()
    for since in [conversations["midnight"] - timedelta(days=offset) for offset in (0, 2, 9)] + [
        selectors.period_start("24h")
    ]:
        assert got_per_feature(since) == expected_per_feature(since)
        bob = conversations["bob"]
        assert got_per_feature(since, Filters(user=bob.pk)) == expected_per_feature(
            since, f"user_id = {bob.pk}"
        )


@pytest.mark.parametrize(
    "filters", [Filters(), Filters(errors=True), Filters(feature="chat", errors=True)],
    ids=["none", "errors", "feature and errors"],
)  # fmt: skip
def test_complete_days_are_read_from_the_roll_ups_alone(conversations, filters):
    """Once rolled up, the raw rows of complete days are not read (errors only included): the
    figures stay the same when those rows are gone."""
    rollups.rollup()
    since = conversations["midnight"] - timedelta(days=9)
    before = (got_per_feature(since, filters), comparisons.variants(since=since, filters=filters))
    assert before[0]
    Generation.objects.filter(created_at__lt=conversations["midnight"]).delete()
    after = (got_per_feature(since, filters), comparisons.variants(since=since, filters=filters))
    assert after == before
