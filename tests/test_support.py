"""Support: tickets answered first by the assistant, then by staff; the knowledge base."""

import asyncio
from datetime import timedelta
from html import escape

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient
from django.urls import reverse

from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from iridium.live import protocol, runs
from iridium.live.models import interrupted_after
from support import answers, selectors, services
from support.models import Article, Ticket, TicketMessage
from tests import factories
from tests.conftest import require
from tests.helpers.sockets import frames_until, idle, open_socket

TICKET = factories.TICKET


@pytest.fixture
def agent(plans):
    return factories.support_agent("dana")


@pytest.fixture
def ticket(user):
    return factories.ticket(user)


# --- Filing tickets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": "  "}, services.TITLE_REQUIRED),
        ({"description": ""}, services.DESCRIPTION_REQUIRED),
        ({"description": "x" * 10_001}, services.DESCRIPTION_TOO_LONG),
        ({"priority": "whenever"}, services.UNKNOWN_PRIORITY.format(value="whenever")),
        ({"category": "gossip"}, services.UNKNOWN_CATEGORY.format(value="gossip")),
    ],
)
def test_bad_tickets_are_refused_with_a_clear_error(user, changes, message):
    with pytest.raises(services.InvalidTicket) as raised:
        services.create_ticket(user=user, **{**TICKET, **changes})
    assert (raised.value.code, raised.value.message) == ("invalid", message)
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"priority": "whenever"}, "priority"),
        ({"category": "x"}, "category"),
        ({"description": "x" * 10_001}, "description"),
    ],
)
def test_the_form_shows_errors_and_files_nothing(client, user, changes, field):
    client.force_login(user)
    response = client.post(reverse("support:new"), {**TICKET, **changes})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not Ticket.objects.exists()


async def test_a_new_ticket_is_answered_first_by_the_assistant(
    ai_settings, make_user, organization
):
    customer = await sync_to_async(make_user)("cora", organization=organization)
    client = AsyncClient()
    await client.aforce_login(customer)
    response = await client.post(reverse("support:new"), TICKET)
    ticket = await Ticket.objects.aget()
    assert response.status_code == 302 and response.url == reverse(
        "support:ticket", args=[ticket.pk]
    )
    await idle("ticket", ticket.pk)
    thread = [m async for m in ticket.messages.order_by("created_at")]
    assert [(m.kind, m.status) for m in thread] == [
        ("customer", "complete"),
        ("assistant", "complete"),
    ]
    assert thread[0].content == TICKET["description"]
    assert thread[1].html and thread[1].model

    await asyncio.to_thread(recorder.flush)
    rows = [g async for g in Generation.objects.order_by("created_at", "step")]
    assert rows, "the answer was not recorded"
    for row in rows:
        assert row.trace_id == thread[1].trace_id == f"support-ticket-{ticket.pk}-{thread[1].pk}"
        assert row.session_id == f"support-ticket-{ticket.pk}"
        assert row.feature == "customer-support"
        assert row.user_id == customer.pk and row.organization_id == organization.pk
        assert row.properties["ticketId"] == ticket.pk
        assert row.properties["ticketPriority"] == "high"
        assert row.properties["ticketCategory"] == "billing"
        assert row.properties["agentAssigned"] == "ai-only"
        assert row.properties["firstResponse"] is True


async def test_follow_ups_are_answered_until_a_person_takes_over(ai_settings, user, agent, ticket):
    socket, connected, _ = await open_socket(user, "ticket", ticket.pk)
    assert connected
    await frames_until(socket, "answer_finished")  # the first answer, started on opening
    await idle("ticket", ticket.pk)
    await socket.send_json_to({"type": "send", "content": "It still charges me twice."})
    frames = await frames_until(socket, "answer_finished")
    assert frames[0]["type"] == "user_message" and "message user customer" in frames[0]["html"]
    await idle("ticket", ticket.pk)
    await asyncio.to_thread(recorder.flush)
    follow_up = await Generation.objects.order_by("-created_at").afirst()
    assert follow_up.properties["firstResponse"] is False

    await socket.send_json_to({"type": "human"})
    assert (await frames_until(socket, "notice"))[-1]["message"] == answers.HANDED_OVER
    await socket.send_json_to({"type": "send", "content": "Hello?"})
    await frames_until(socket, "user_message")
    await asyncio.sleep(0.2)
    assert await socket.receive_nothing(timeout=0.3)
    await ticket.arefresh_from_db()
    assert ticket.needs_human
    kinds = [m.kind async for m in ticket.messages.order_by("created_at")]
    assert kinds == ["customer", "assistant", "customer", "assistant", "customer"]
    await socket.disconnect()


async def test_an_agent_replies_and_the_assistant_stays_quiet(ai_settings, user, agent, ticket):
    await sync_to_async(services.assign)(ticket=ticket, agent=agent, by=agent)
    staff_socket, connected, _ = await open_socket(agent, "ticket", ticket.pk)
    assert connected
    assert (await staff_socket.receive_json_from())["type"] == "ready"
    await staff_socket.send_json_to({"type": "send", "content": "Refund issued."})
    [frame] = await frames_until(staff_socket, "user_message")
    assert "message user agent" in frame["html"] and "dana (staff)" in frame["html"]
    await ticket.arefresh_from_db()
    assert ticket.status == "pending"
    assert not runs.running(answers.run_key(ticket.pk))
    await staff_socket.disconnect()


async def test_the_assistant_acts_for_the_ticket_owner_only(ai_settings, user, agent, ticket):
    # Staff opening an unanswered ticket do not make the assistant answer (as them).
    socket, connected, _ = await open_socket(agent, "ticket", ticket.pk)
    assert connected
    assert (await socket.receive_json_from())["type"] == "ready"
    assert not runs.running(answers.run_key(ticket.pk))
    await socket.disconnect()
    assert await ticket.messages.acount() == 1


async def test_an_answer_left_by_a_stopped_worker_is_marked_interrupted(ai_settings, user):
    """As in chat: a worker that stopped mid-answer leaves it "being written"; once it has been
    silent for a while, opening the ticket marks it failed, with a Retry, and keeps what was
    saved. Retrying replaces it with a new answer."""
    from django.utils import timezone

    ticket = await sync_to_async(factories.ticket)(user)
    answer = await TicketMessage.objects.acreate(
        ticket=ticket, kind=TicketMessage.Kind.ASSISTANT, status="streaming", content="Half an ans"
    )
    stale = timezone.now() - interrupted_after() - timedelta(seconds=1)
    await TicketMessage.objects.filter(pk=answer.pk).aupdate(updated_at=stale)
    socket, connected, _ = await open_socket(user, "ticket", ticket.pk)
    assert connected
    ready = await socket.receive_json_from()
    assert ready["type"] == "ready" and ready["in_progress"] is None
    await answer.arefresh_from_db()
    assert answer.status == "error" and answer.error == TicketMessage.INTERRUPTED
    assert answer.content == "Half an ans"
    await socket.send_json_to({"type": "retry"})
    frames = await frames_until(socket, "answer_finished")
    assert frames[-1]["message"]["status"] == "complete"
    await idle("ticket", ticket.pk)
    assert not await TicketMessage.objects.filter(pk=answer.pk).aexists()
    thread = [(m.kind, m.status) async for m in ticket.messages.order_by("created_at", "pk")]
    assert thread == [("customer", "complete"), ("assistant", "complete")]
    await socket.disconnect()


# --- Who may see what -------------------------------------------------------------------------


def test_ticket_pages_access_matrix(client, user, agent, make_user, ticket):
    stranger = make_user("sid")
    # Staff who are not support agents (an analyst, say) do not read tickets.
    other_staff = make_user("otto", is_staff=True)
    url = reverse("support:ticket", args=[ticket.pk])
    for viewer, expected in [(user, 200), (agent, 200), (stranger, 404), (other_staff, 404)]:
        client.force_login(viewer)
        assert client.get(url).status_code == expected
    client.logout()
    assert client.get(url).status_code == 302


@pytest.mark.parametrize(
    ("name", "data"), [("support:assign", {"agent": ""}), ("support:status", {"status": "closed"})]
)
def test_only_support_agents_change_tickets(client, user, make_user, ticket, name, data):
    for viewer in (user, make_user("sid"), make_user("otto", is_staff=True)):
        client.force_login(viewer)
        response = client.post(reverse(name, args=[ticket.pk]), data)
        assert response.status_code == 403
        assert "Only support agents handle tickets." in response.content.decode()
    client.logout()
    response = client.post(reverse(name, args=[ticket.pk]), data)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_only_support_agents_see_the_queue(client, user, agent, make_user, ticket):
    for viewer in (user, make_user("otto", is_staff=True)):
        client.force_login(viewer)
        assert client.get(reverse("support:queue")).status_code == 403
    client.force_login(agent)
    assert client.get(reverse("support:queue")).status_code == 200


async def test_ticket_sockets_access_matrix(ai_settings, user, agent, make_user, ticket):
    stranger = await sync_to_async(make_user)("sid")
    other_staff = await sync_to_async(make_user)("otto", is_staff=True)
    for viewer, allowed in [(user, True), (agent, True), (stranger, False), (other_staff, False)]:
        socket, connected, code = await open_socket(viewer, "ticket", ticket.pk)
        assert connected is allowed, viewer
        if connected:
            await socket.disconnect()
        else:
            assert code == protocol.CLOSE_FORBIDDEN
    _, connected, code = await open_socket(None, "ticket", ticket.pk)
    assert not connected and code == protocol.CLOSE_UNAUTHENTICATED
    await idle("ticket", ticket.pk)


def test_customers_list_only_their_own_tickets(client, user, make_user, ticket):
    services.create_ticket(user=make_user("sid"), **TICKET)
    client.force_login(user)
    assert list(client.get(reverse("support:index")).context["tickets"]) == [ticket]


# --- Staff actions ----------------------------------------------------------------------------


def test_staff_assign_reply_and_resolve(client, agent, ticket, plans):
    from decimal import Decimal

    factories.create_generation(
        trace_id=f"{ticket.ai_session_id}-1",
        session_id=ticket.ai_session_id,
        feature="customer-support",
        latency_ms=1,
        total_cost_usd=Decimal("0.0125"),
    )
    client.force_login(agent)
    client.post(reverse("support:assign", args=[ticket.pk]), {"agent": agent.pk})
    client.post(reverse("support:status", args=[ticket.pk]), {"status": "resolved"})
    ticket.refresh_from_db()
    assert ticket.assigned_to == agent and ticket.status == "resolved" and not ticket.ai_answers
    page = client.get(reverse("support:ticket", args=[ticket.pk])).content.decode()
    assert "AI cost on this ticket: $0.012500" in page
    queue = client.get(reverse("support:queue"), {"status": "resolved"})
    [listed] = queue.context["tickets"]
    assert listed == ticket and listed.ai_cost == Decimal("0.0125")
    bad = client.post(reverse("support:status", args=[ticket.pk]), {"status": "lost"}, follow=True)
    assert escape(services.UNKNOWN_STATUS.format(value="lost")) in bad.content.decode()


def test_queue_filters(client, user, agent, make_user):
    urgent = services.create_ticket(user=user, **{**TICKET, "priority": "urgent"})
    other = services.create_ticket(user=make_user("sid"), **{**TICKET, "title": "Login fails",
                                                             "category": "account"})  # fmt: skip
    services.assign(ticket=other, agent=agent, by=agent)
    client.force_login(agent)

    def listed(**filters):
        return list(client.get(reverse("support:queue"), filters).context["tickets"])

    assert listed(priority="urgent") == [urgent]
    assert listed(category="account") == [other]
    assert listed(assigned="none") == [urgent]
    assert listed(assigned=str(agent.pk)) == [other]
    assert listed(q="login") == [other]
    assert listed(q="sid") == [other]
    assert set(listed()) == {urgent, other}


def test_tickets_are_assigned_to_support_agents_only(user, agent, make_user, ticket):
    for not_an_agent in (user, make_user("otto", is_staff=True)):
        with pytest.raises(services.InvalidTicket, match="only be assigned to support agents"):
            services.assign(ticket=ticket, agent=not_an_agent, by=agent)


# --- Errors: domain errors with codes, mapped once at each edge ------------------------------


async def test_each_support_error_arrives_over_the_socket_with_its_code(ai_settings, user, agent):
    from channels.testing import WebsocketCommunicator

    from support.consumers import TicketConsumer

    ticket = await sync_to_async(factories.ticket)(user)
    await Ticket.objects.filter(pk=ticket.pk).aupdate(status=Ticket.Status.CLOSED)
    socket, connected, _ = await open_socket(user, "ticket", ticket.pk)
    assert connected
    await frames_until(socket, "ready")
    await socket.send_json_to({"type": "send", "content": "Still broken"})
    (closed,) = await frames_until(socket, "error")
    assert (closed["code"], closed["text"]) == ("ticket_closed", "Still broken")
    await socket.disconnect()

    # The service refuses a person who neither owns the ticket nor handles tickets (here an
    # agent whose staff status the socket's user no longer has).
    path = f"/ws/support/tickets/{ticket.pk}/"
    socket = WebsocketCommunicator(TicketConsumer.as_asgi(), path)
    socket.scope["user"] = agent
    socket.scope["url_route"] = {"kwargs": {"pk": ticket.pk}}
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await frames_until(socket, "ready")
    agent.is_staff = False
    await socket.send_json_to({"type": "send", "content": "A reply"})
    (refused,) = await frames_until(socket, "error")
    assert (refused["code"], refused["message"], refused["text"]) == (
        "forbidden",
        services.STAFF_ONLY,
        "A reply",
    )
    await socket.send_json_to({"type": "human"})
    (refused,) = await frames_until(socket, "error")
    assert refused["code"] == "forbidden"
    await socket.disconnect()
    assert await TicketMessage.objects.filter(ticket=ticket).acount() == 1
    await idle("ticket", ticket.pk)


def test_each_support_error_gets_its_status_over_http(client, user, agent, ticket):
    def post(name, data=None, **headers):
        return client.post(reverse(name, args=[ticket.pk]), data or {}, headers=headers)

    client.force_login(user)
    response = post("support:reopen")  # an open ticket
    assert response.status_code == 409
    assert escape(services.NOT_FINISHED) in response.content.decode()
    assert 'data-code="ticket_not_finished"' in response.content.decode()

    client.force_login(agent)
    response = post("support:reopen", Accept="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": services.ONLY_THE_OWNER_REOPENS,
    }
    response = post("support:status", {"status": "gone"}, Accept="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": services.UNKNOWN_STATUS.format(value="gone"),
    }
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN


# --- Knowledge base ---------------------------------------------------------------------------


@pytest.fixture
def articles(db):
    return {
        "reset": Article.objects.create(
            title="Resetting your password",
            body="Open Settings, then Security, and choose Reset password.",
            tags="password, account",
            published=True,
        ),
        "billing": Article.objects.create(
            title="Understanding your invoice",
            body="Each invoice lists charges. Password protected PDFs are sent by email.",
            tags="billing",
            published=True,
        ),
        "draft": Article.objects.create(
            title="Password policy (draft)", body="password password password", published=False
        ),
    }


def test_search_ranks_by_relevance_and_hides_drafts(articles):
    found = selectors.search_articles("reset password")
    assert found[0] == articles["reset"]
    assert articles["draft"] not in found
    assert selectors.search_articles("invoice charges")[0] == articles["billing"]
    assert selectors.search_articles("zebra") == []
    assert selectors.search_articles("   ") == []


def test_word_ranking_fallback(articles):
    ranked = selectors._rank_by_words(Article.objects.filter(published=True), "password reset", 5)
    assert ranked == [articles["reset"], articles["billing"]]


@pytest.mark.postgresql
def test_full_text_search_on_postgresql_stems_words(articles):
    require(connection.vendor == "postgresql", "PostgreSQL (full-text search)")
    # "passwords" and "resets" match "password" and "reset" through English stemming.
    assert selectors.search_articles("resets passwords")[0] == articles["reset"]
    assert selectors.search_articles("invoices")[0] == articles["billing"]


def test_articles_pages(client, user, agent, articles):
    client.force_login(user)
    listing = client.get(reverse("support:articles"), {"q": "password"}).content.decode()
    assert "Resetting your password" in listing and "draft" not in listing
    assert client.get(reverse("support:article", args=[articles["draft"].pk])).status_code == 404
    page = client.get(reverse("support:article", args=[articles["reset"].pk])).content.decode()
    assert "<p>Open Settings" in page
    client.force_login(agent)
    assert client.get(reverse("support:article", args=[articles["draft"].pk])).status_code == 200


def test_a_ticket_filed_from_chat_is_a_real_ticket_with_its_thread(user):
    ticket = services.create_ticket(user=user, title="From chat", description="Help", source="chat")
    assert ticket.source == "chat" and ticket.messages.get().kind == TicketMessage.Kind.CUSTOMER
    assert answers.pending_first_response(ticket)
