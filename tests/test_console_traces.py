"""Traces: the list and its filters against SQL, one trace as a timeline and a transcript, and
the links between a conversation, a ticket or a creation and its trace."""

import itertools
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from iridium.ai.models import Generation
from iridium.analytics import rollups, selectors
from iridium.analytics.filters import Filters
from iridium.analytics.models import DailyUsage, RollupMark
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
def many(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    now = timezone.now()
    factories.create_generations(
        {
            "created_at": now - timedelta(days=index % 6, minutes=index),
            "user": [alice, bob][index % 2],
            "feature": ["chat", "customer-support", "code-generation"][index % 3],
            "is_error": index % 7 == 0,
            "total_cost_usd": Decimal(index) / 10000,
            "input_tokens": index,
            "output_tokens": 2 * index,
            "trace_id": f"conversation-{index % 25}",
        }
        for index in range(120)
    )
    return {"alice": alice, "bob": bob}


@pytest.mark.parametrize(
    ("name", "make", "where"),
    [
        ("none", lambda p: Filters(), "TRUE"),
        ("user", lambda p: Filters(user=p["alice"].pk), "user_id = {alice}"),
        ("feature", lambda p: Filters(feature="chat"), "feature = 'chat'"),
        ("errors", lambda p: Filters(errors=True), "is_error"),
    ],
)
@pytest.mark.parametrize("rolled_up", ["raw rows", "days", "hours"])
def test_the_traces_list_and_its_filters(many, name, make, where, rolled_up):
    # With filters, only the rolled-up days and hours with a row that passes them are read.
    roll_up(rolled_up)
    for period in ("7d", "24h"):
        since = selectors.period_start(period)
        assert check_traces(many, since, make, where), period  # the traces found, checked


def roll_up(rolled_up):
    if rolled_up != "raw rows":
        rollups.rollup()
    if rolled_up == "hours":
        rollups.rollup_new_hours()
        assert rollups.parts(selectors.period_start("24h")).hours is not None


def check_traces(many, since, make, where):
    condition = where.format(alice=many["alice"].pk)
    wanted = {
        trace_id
        for (trace_id,) in sql(
            f"SELECT DISTINCT trace_id FROM {{table}} WHERE created_at >= %s AND {condition}",
            [since],
        )
    }
    got = selectors.traces(since=since, filters=make(many))
    assert {row["trace_id"] for row in got} == wanted and wanted
    for row in got:  # a trace's figures are the whole trace's in the period
        [(cost, calls, errors, tokens)] = sql(
            "SELECT SUM(total_cost_usd), COUNT(*), SUM(CASE WHEN is_error THEN 1 ELSE 0 END),"
            " SUM(input_tokens) FROM {table} WHERE created_at >= %s AND trace_id = %s",
            [since, row["trace_id"]],
        )
        assert (dec(row["cost"]), row["calls"], row["errors"], row["input_tokens"]) == (
            dec(cost), calls, errors, tokens)  # fmt: skip
    return wanted


def test_with_filters_the_list_reads_the_rolled_up_hours_and_days_that_have_a_row(many):
    """The raw rows after the roll-ups (the hour under way), then only the rolled-up hours and
    days with a row that passes the filters, newest first."""
    roll_up("hours")
    mark = RollupMark.objects.get()
    # From the first day rolled up (before it, the raw rows are read: nothing says what is there).
    since, _ = rollups._day_bounds(DailyUsage.objects.order_by("day").values_list("day").first()[0])
    nothing = Filters(feature="no-such-feature")
    assert selectors._trace_windows(since, None, nothing) == [(mark.rolled_until, None)]
    errors = Generation.objects.filter(is_error=True, created_at__gte=since)
    hours = sorted(
        {rollups.hour_start(moment) for moment in errors.filter(
            created_at__gte=mark.hours_from, created_at__lt=mark.rolled_until
        ).values_list("created_at", flat=True)},
        reverse=True,
    )  # fmt: skip
    days = sorted(
        {timezone.localtime(moment).date() for moment in errors.filter(
            created_at__lt=mark.hours_from).values_list("created_at", flat=True)},
        reverse=True,
    )  # fmt: skip
    assert hours and days
    assert selectors._trace_windows(since, None, Filters(errors=True)) == [
        (mark.rolled_until, None),
        *[(hour, hour + timedelta(hours=1)) for hour in hours],
        *[rollups._day_bounds(day) for day in days],
    ]


@pytest.mark.parametrize("limit", [1, 4, 9])
@pytest.mark.parametrize("rolled_up", ["raw rows", "days", "hours"])
def test_the_newest_traces_first(many, limit, rolled_up):
    """The list holds the traces of the newest rows that pass the filters, newest first, rolled
    up or not."""
    roll_up(rolled_up)
    bob = many["bob"].pk
    cases = [
        (Filters(), "TRUE"),
        (Filters(errors=True), "is_error"),
        (Filters(user=bob, feature="chat"), f"user_id = {bob} AND feature = 'chat'"),
    ]
    starts = [selectors.period_start("7d"), selectors.period_start("24h")]
    for since, (filters, condition) in itertools.product(starts, cases):
        wanted = []
        for (trace_id,) in sql(
            f"SELECT trace_id FROM {{table}} WHERE created_at >= %s AND {condition}"
            " ORDER BY created_at DESC",
            [since],
        ):
            if trace_id not in wanted:
                wanted.append(trace_id)
        got = selectors.traces(since=since, filters=filters, limit=limit)
        assert [row["trace_id"] for row in got] == wanted[:limit], condition


@pytest.mark.parametrize("rolled_up", ["raw rows", "days", "hours"])
@pytest.mark.parametrize("days", [2, 1, 0])
def test_the_traces_list_of_one_day(many, client, staff, rolled_up, days):
    roll_up(rolled_up)
    day = (timezone.localtime() - timedelta(days=days)).date()
    wanted = {
        trace_id
        for (trace_id,) in sql(
            "SELECT DISTINCT trace_id FROM {table} WHERE DATE(created_at) = %s AND is_error",
            [day],
        )
    }
    client.force_login(staff)
    html = client.get(reverse("analytics:traces"), {"day": day.isoformat(), "errors": "on"})
    shown = set(re.findall(r'href="/analytics/traces/([^/]+)/"', html.content.decode()))
    assert shown == wanted and wanted


@pytest.fixture
def conversation_trace(make_user):
    """A chat answer that used a tool: a call asking for the tool, the tool step, a second
    call with its result and the answer; and a cache hit."""
    alice = make_user("alice")
    conversation = factories.conversation(alice, title="Refund")
    trace_id = conversation.ai_session_id
    start = timezone.now() - timedelta(seconds=10)
    question = "How do I get a **refund**? <script>alert(1)</script>"
    ask = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    tool_call = {"id": "call_1", "type": "function", "function": {
        "name": "search_knowledge_base", "arguments": '{"query": "refund"}'}}  # fmt: skip
    factories.create_generation(
        trace_id=trace_id, user=alice, created_at=start, latency_ms=800.0,
        time_to_first_token_ms=120.0, input_tokens=50, output_tokens=10,
        total_cost_usd=Decimal("0.000123"), input=ask,
        output=[{"role": "assistant", "content": None, "tool_calls": [tool_call]}],
        span_id="gen-1", step=1,
    )  # fmt: skip
    factories.span(
        trace_id=trace_id, user=alice, created_at=start + timedelta(milliseconds=810),
        latency_ms=35.0, input_state={"query": "refund"},
        output_state={"articles": ["Understanding your invoice"]}, span_id="tool-1",
        parent_id="gen-1",
    )  # fmt: skip
    factories.create_generation(
        trace_id=trace_id, user=alice, created_at=start + timedelta(milliseconds=850),
        latency_ms=2400.0, input_tokens=90, output_tokens=40,
        total_cost_usd=Decimal("0.000456"), step=2, span_id="gen-2",
        input=[*ask, {"role": "assistant", "content": None, "tool_calls": [tool_call]},
               {"role": "tool", "tool_call_id": "call_1",
                "content": '{"articles": ["Understanding your invoice"]}'}],
        output=[{"role": "assistant", "content": "File a ticket in *billing*:\n\n- one\n- two"}],
    )  # fmt: skip
    factories.create_generation(
        trace_id=trace_id, user=alice, created_at=start + timedelta(seconds=5), latency_ms=3.0,
        cache_hit=True, saved_cost_usd=Decimal("0.0005"), span_id="hit-1",
    )  # fmt: skip
    return {"alice": alice, "conversation": conversation, "trace_id": trace_id}


def test_a_trace_as_a_timeline_and_a_transcript(client, staff, conversation_trace):
    client.force_login(staff)
    html = client.get(reverse("analytics:trace", args=[conversation_trace["trace_id"]]))
    html = html.content.decode()
    steps = html.count('data-testid="timeline-step"')
    assert steps == 4
    # each bar with its latency, cost and tokens, durations in ms or s
    for printed in ("800 ms", "2.40 s", "35 ms", "<span>3 ms</span>", "first token 120 ms",
                    "$0.000123", "$0.000456", "50 in / 10 out tokens",
                    "saved $0.000500"):  # fmt: skip
        assert printed in html, printed
    bars = re.findall(r'<rect class="bar" x="([\d.]+)" y="0" width="([\d.]+)"', html)
    assert len(bars) == 4
    xs = [float(x) for x, _ in bars]
    assert xs == sorted(xs) and xs[0] == 0  # in order, from the trace's start
    assert "Tool search_knowledge_base" in html and "depth-1" in html  # nested under its call
    # the transcript: roles, Markdown rendered and sanitised, tool calls and results
    assert "<strong>refund</strong>" in html and "<em>billing</em>" in html
    assert "<li>one</li>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "Calls tool <code>search_knowledge_base</code>" in html
    assert "(result of call_1)" in html
    # a tool's JSON result is shown as pretty JSON, not as Markdown
    assert '<pre class="trace-content">{\n  &quot;articles&quot;: [\n' in html
    assert "&quot;query&quot;: &quot;refund&quot;" in html
    for role in ("System", "User", "Assistant", "Tool"):
        assert f'<p class="turn-role">{role}' in html
    conversation = conversation_trace["conversation"]
    owner = f'data-testid="trace-owner">Conversation {conversation.pk} of alice<'
    assert owner in html  # not staff's: no link, and no title (people's words)


def test_privacy_mode_and_permissions_hide_the_content(client, make_user, conversation_trace):
    Generation.objects.filter(span_id="gen-2").update(privacy_mode=True, input=None, output=None)
    analyst = make_user("ann")
    analyst.user_permissions.add(Permission.objects.get(codename="view_console"))
    url = reverse("analytics:trace", args=[conversation_trace["trace_id"]])
    client.force_login(analyst)
    html = client.get(url).content.decode()
    assert 'data-testid="content-hidden"' in html and 'data-testid="turn"' not in html
    assert "2.40 s" in html  # the figures stay
    analyst.user_permissions.add(Permission.objects.get(codename="view_ai_content"))
    html = client.get(url).content.decode()
    assert "Content not kept (privacy mode)." in html
    assert "File a ticket" not in html and "<strong>refund</strong>" in html


def test_links_between_objects_and_their_sessions_and_traces(client, make_user, staff):
    customer = make_user("alice")
    agent = make_user("dana", is_staff=True)
    agent.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_ticket", "change_ticket"])
    )
    ticket = factories.ticket(customer)
    turn = f"{ticket.ai_session_id}-77"  # one answer's trace
    factories.create_generation(trace_id=turn, session_id=ticket.ai_session_id, user=customer)
    ticket_url = reverse("support:ticket", args=[ticket.pk])
    session_url = reverse("analytics:session", args=[ticket.ai_session_id])
    trace_url = reverse("analytics:trace", args=[turn])
    for who, linked in [(customer, False), (agent, True), (staff, True)]:
        client.force_login(who)
        assert (f'href="{session_url}"' in client.get(ticket_url).content.decode()) is linked
    client.force_login(agent)
    session = client.get(session_url).content.decode()
    assert f'<a href="{ticket_url}">Ticket #{ticket.pk}' in session
    assert f'href="{trace_url}"' in session  # the session lists its turns
    back = client.get(trace_url).content.decode()
    assert f'<a href="{ticket_url}">Ticket #{ticket.pk}' in back
    assert f'href="{session_url}"' in back  # and a turn links to its session
    # a staff member's own conversation (its session) and creation (its trace), and back
    conversation = factories.conversation(staff, title="Mine")
    creation = factories.creation(staff)
    client.force_login(staff)
    factories.create_generation(
        trace_id=f"{conversation.ai_session_id}-5",
        session_id=conversation.ai_session_id,
        user=staff,
    )
    factories.create_generation(trace_id=creation.trace_id, user=staff)
    for page, target in [
        (reverse("chat:conversation", args=[conversation.pk]),
         reverse("analytics:session", args=[conversation.ai_session_id])),
        (reverse("codegen:creation", args=[creation.pk]),
         reverse("analytics:trace", args=[creation.trace_id])),
    ]:  # fmt: skip
        assert f'href="{target}"' in client.get(page).content.decode()
        assert f'<a href="{page}">' in client.get(target).content.decode()
    # the customer sees no link on their own conversation, nor its session
    mine = factories.conversation(customer)
    client.force_login(customer)
    html = client.get(reverse("chat:conversation", args=[mine.pk])).content.decode()
    assert 'data-testid="trace-link"' not in html
    assert client.get(session_url).status_code == 403


def test_a_long_conversation_reads_once(client, staff, make_user):
    """Each call's input repeats the conversation so far: the page shows each message once."""
    alice = make_user("alice")
    start = timezone.now() - timedelta(minutes=30)
    history = []
    for turn in range(30):
        history.append({"role": "user", "content": f"question number {turn}"})
        answer = {"role": "assistant", "content": f"answer number {turn}"}
        factories.create_generation(
            trace_id="conversation-77", user=alice, created_at=start + timedelta(seconds=turn),
            input=list(history), output=[answer],
        )  # fmt: skip
        history.append(answer)
    client.force_login(staff)
    html = client.get(reverse("analytics:trace", args=["conversation-77"])).content.decode()
    assert html.count('data-testid="turn"') == 60
    for turn in range(30):
        assert html.count(f"question number {turn}<") == 1
    assert "and 58 earlier messages, shown with the calls above." in html
