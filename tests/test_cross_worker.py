"""Two workers of the production set-up (DEBUG off, PostgreSQL through the pool, Redis): a Stop
pressed when nothing runs stops nothing later; a Stop on a ticket, by its customer or a member
of staff, stops that ticket's answer and nothing else of either; and however many sockets send
at once across two_workers, a conversation writes one question and one answer, a ticket one answer
at a time."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from support.models import TicketMessage
from tests import factories
from tests.helpers.production import (
    frames_until,
    open_chat,
    open_ticket,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(server, conversation_id, cookie):
    return (await open_chat(server, conversation_id, cookie))[0]


async def connect_to_ticket(server, ticket_id, cookie):
    return (await open_ticket(server, ticket_id, cookie))[0]


async def test_a_stop_pressed_when_nothing_runs_stops_no_later_answer(two_workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tab_a = await connect(two_workers[0], conversation.pk, cookie)
    tab_b = await connect(two_workers[1], conversation.pk, cookie)
    await tab_b.send(json.dumps({"type": "stop"}))  # nothing is being written
    await asyncio.sleep(0.3)
    await tab_a.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.05]]"}))
    finished = (await frames_until(tab_a, "answer_finished"))[-1]["message"]
    assert finished["status"] == "complete"
    await tab_a.close()
    await tab_b.close()


async def test_sockets_sending_at_once_across_workers_write_one_answer(two_workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tabs = [await connect(two_workers[index % 2], conversation.pk, cookie) for index in range(6)]
    await asyncio.gather(
        *(
            tab.send(
                json.dumps({"type": "send", "content": f"Question {index} [[demo:slow=0.05]]"})
            )
            for index, tab in enumerate(tabs)
        )
    )
    outcomes = [await frames_until(tab, "error", "answer_finished") for tab in tabs]
    errors = [frames[-1] for frames in outcomes if frames[-1]["type"] == "error"]
    assert all(error["code"] == "busy" for error in errors)
    # Every refused tab got its own text back.
    assert sorted(error["text"].split()[1] for error in errors) == sorted(
        str(index) for index in range(6) if not _accepted(outcomes[index])
    )
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1
    assert await Message.objects.filter(conversation=conversation, role="assistant").acount() == 1
    for tab in tabs:
        await tab.close()


def _accepted(frames):
    return frames[-1]["type"] == "answer_finished"


# --- Tickets ----------------------------------------------------------------------------------

LONG = "Tell me more [[demo:slow=0.05]] [[demo:words=60]]"


@sync_to_async
def answered_ticket(owner):
    """A ticket of `owner` whose first answer is written (opening it starts none)."""
    ticket = factories.ticket(owner)
    TicketMessage.objects.create(ticket=ticket, kind="assistant", content="Hello.")
    return ticket


@pytest.fixture
def agent(plans):
    return factories.support_agent("dana")


@pytest.fixture
def busy_plans(plans):
    plans["free"].max_answers_in_flight = 10
    plans["free"].save()


async def answering(socket, content):
    """Send `content` and wait until its answer has begun streaming."""
    await socket.send(json.dumps({"type": "send", "content": content}))
    await frames_until(socket, "delta")


async def ended(socket):
    return (await frames_until(socket, "answer_finished"))[-1]["message"]["status"]


@pytest.mark.parametrize("stopped_by", ["agent", "customer"])
async def test_a_stop_on_a_ticket_stops_its_answer_and_nothing_else_of_either(
    two_workers, user, agent, busy_plans, stopped_by
):
    """The customer's other ticket and conversation, and the agent's own conversation, answer
    on worker A beside the ticket; the Stop is pressed on worker B, by the agent or the
    customer."""
    customer_cookie = await sync_to_async(session_cookie)(user)
    agent_cookie = await sync_to_async(session_cookie)(agent)
    ticket, other_ticket = await answered_ticket(user), await answered_ticket(user)
    conversation = await Conversation.objects.acreate(user=user)
    agents_conversation = await Conversation.objects.acreate(user=agent)
    tab = await connect_to_ticket(two_workers[0], ticket.pk, customer_cookie)
    others = [
        await connect_to_ticket(two_workers[0], other_ticket.pk, customer_cookie),
        await connect(two_workers[0], conversation.pk, customer_cookie),
        await connect(two_workers[0], agents_conversation.pk, agent_cookie),
    ]
    for socket in [tab, *others]:
        await answering(socket, LONG)

    cookie = agent_cookie if stopped_by == "agent" else customer_cookie
    stopper = await connect_to_ticket(two_workers[1], ticket.pk, cookie)
    await stopper.send(json.dumps({"type": "stop"}))
    assert await ended(tab) == "stopped"
    assert [await ended(socket) for socket in others] == ["complete"] * 3
    statuses = [
        m.status async for m in TicketMessage.objects.filter(ticket=ticket, kind="assistant")
    ]
    assert statuses == ["complete", "stopped"]
    for socket in [tab, stopper, *others]:
        await socket.close()


async def test_an_agents_stop_when_nothing_runs_stops_no_later_answer(two_workers, user, agent):
    ticket = await answered_ticket(user)
    customer = await connect_to_ticket(
        two_workers[0], ticket.pk, await sync_to_async(session_cookie)(user)
    )
    staff = await connect_to_ticket(
        two_workers[1], ticket.pk, await sync_to_async(session_cookie)(agent)
    )
    await staff.send(json.dumps({"type": "stop"}))  # nothing is being written
    await asyncio.sleep(0.3)
    await customer.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.05]]"}))
    assert await ended(customer) == "complete"
    await customer.close()
    await staff.close()


async def test_a_ticket_sent_to_at_once_across_workers_writes_one_answer_at_a_time(
    two_workers, user
):
    ticket = await answered_ticket(user)
    cookie = await sync_to_async(session_cookie)(user)
    tabs = [
        await connect_to_ticket(two_workers[index % 2], ticket.pk, cookie) for index in range(6)
    ]
    await asyncio.gather(
        *(
            tab.send(json.dumps({"type": "send", "content": f"Question {index} {LONG}"}))
            for index, tab in enumerate(tabs)
        )
    )
    # Every message is kept; one answer is written (the others found the ticket busy), and
    # every tab sees it end.
    finished = [(await frames_until(tab, "answer_finished"))[-1]["message"] for tab in tabs]
    assert {message["id"] for message in finished} == {finished[0]["id"]}
    assert finished[0]["status"] == "complete"
    customer = TicketMessage.objects.filter(ticket=ticket, kind="customer")
    assert await customer.acount() == 1 + 6
    answers = [m async for m in TicketMessage.objects.filter(ticket=ticket, kind="assistant")]
    assert [m.status for m in answers] == ["complete", "complete"]
    for tab in tabs:
        await tab.close()
