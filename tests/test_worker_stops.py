"""A worker stops with answers in flight, as production runs it (`uvicorn --workers N`, DEBUG
off, PostgreSQL, Redis, PostHog on loopback):

- SIGTERM drains: the answers being written finish within the grace period (or are stopped
  and saved when it ends), and every call's row and PostHog event is delivered before exit;
- SIGKILL leaves each call's row in flight; another worker completes it as interrupted, with
  its usage estimated and priced, and budgets count it.
"""

import asyncio
import json
import signal
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.models import Conversation, Message
from iridium.ai.models import Generation
from tests.helpers.production import (
    Server,
    frames_until,
    open_chat,
    production_environment,
    require_production_services,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def environment(ai_settings, posthog_server, fake_posthog, plans):
    require_production_services()
    plans["free"].max_answers_in_flight = 10
    plans["free"].save()
    return production_environment(
        ai_base_url=ai_settings.AI_BASE_URL,
        posthog_url=posthog_server.url,
        AI_CALL_STALE_SECONDS=2,
    )


@pytest.fixture
def servers():
    """Start servers with `servers(environment, workers=...)`; whatever is left is killed."""
    started = []

    def start(environment, **options):
        started.append(Server(environment, **options))
        return started[-1]

    yield start
    for server in started:
        server.kill_all()


async def start_answers(server, user, count, content):
    """`count` conversations answering on `server`, each past its first token."""
    cookie = await sync_to_async(session_cookie)(user)
    sockets = []
    for _ in range(count):
        conversation = await Conversation.objects.acreate(user=user)
        socket, _ = await open_chat(server, conversation.pk, cookie)
        await socket.send(json.dumps({"type": "send", "content": content}))
        sockets.append(socket)
    for socket in sockets:
        await frames_until(socket, "delta")
    return sockets


async def wait_for_rows(user, count, **filters):
    for _ in range(200):
        if await Generation.objects.filter(user=user, **filters).acount() >= count:
            return [g async for g in Generation.objects.filter(user=user, **filters)]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} rows {filters} never appeared")


async def test_sigterm_lets_answers_finish_and_delivers_every_record(
    environment, servers, user, fake_posthog
):
    server = servers(environment, workers=2)
    await start_answers(server, user, 3, "A story [[demo:slow=0.05]] [[demo:words=40]]")
    # uvicorn exits by the signal it caught once it has shut down (a supervisor: with 0).
    assert await sync_to_async(server.stop)(signal.SIGTERM, 40) in (0, -signal.SIGTERM)
    answers = [m async for m in Message.objects.filter(role="assistant")]
    assert len(answers) == 3
    assert all(m.status == "complete" and len(m.content.split()) >= 40 for m in answers)
    rows = [g async for g in Generation.objects.filter(user=user)]
    assert len(rows) == 3 and not any(row.in_flight for row in rows)
    assert all(row.finish_reason == "stop" for row in rows)
    events = fake_posthog.wait_for(3, name="$ai_generation", timeout=2)
    assert sorted(e["properties"]["$ai_span_id"] for e in events) == sorted(
        row.span_id for row in rows
    )


async def test_sigterm_stops_and_saves_answers_longer_than_the_grace_period(
    environment, servers, user, fake_posthog
):
    server = servers({**environment, "AI_SHUTDOWN_GRACE_SECONDS": "1"})
    await start_answers(server, user, 2, "A long story [[demo:slow=0.05]] [[demo:words=400]]")
    started = time.monotonic()
    assert await sync_to_async(server.stop)(signal.SIGTERM, 30) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 15
    answers = [m async for m in Message.objects.filter(role="assistant")]
    assert [m.status for m in answers] == ["stopped", "stopped"]
    assert all(0 < len(m.content.split()) < 400 for m in answers)
    rows = [g async for g in Generation.objects.filter(user=user)]
    assert len(rows) == 2 and all(r.finish_reason == "cancelled" and r.output_tokens for r in rows)
    assert len(fake_posthog.wait_for(2, name="$ai_generation", timeout=2)) == 2


async def test_sigkill_leaves_calls_that_another_worker_completes_and_budgets_count(
    environment, servers, user, plans, fake_posthog
):
    server = servers(environment)
    await start_answers(server, user, 3, "A long story [[demo:slow=0.05]] [[demo:words=400]]")
    # A heartbeat has written what each has written so far (every 2/3 s).
    await wait_for_rows(user, 3, in_flight=True, output_tokens__gt=0)
    await sync_to_async(server.stop)(signal.SIGKILL)
    in_flight = await wait_for_rows(user, 3, in_flight=True)
    assert all(row.reserved_cost_usd > 0 for row in in_flight)

    successor = servers(environment)  # completes them once they have been silent long enough
    rows = await wait_for_rows(user, 3, in_flight=False, finish_reason="interrupted")
    for row in rows:
        assert row.is_error and row.output_tokens > 0 and row.input_tokens > 0
        assert row.total_cost_usd > 0 and row.properties["usageEstimated"] is True
    # The client sends every 5 s (PostHog's flush interval).
    events = fake_posthog.wait_for(3, name="$ai_generation", timeout=10)
    assert {e["properties"]["$ai_span_id"] for e in events} == {r.span_id for r in rows}
    # Budgets count them: with a budget of exactly what they cost, the next call is refused.
    spent = sum((row.total_cost_usd for row in rows), Decimal(0))
    free = plans["free"]
    free.monthly_budget_usd = spent.quantize(Decimal("0.01"))
    await free.asave()
    # The successor has made no call for this user: nothing it keeps (its callers, for 5 s)
    # holds the old budget.
    [socket] = await start_answers_refused(successor, user)
    assert socket["type"] == "refused" and socket["code"] == "limit_reached"


async def start_answers_refused(server, user):
    cookie = await sync_to_async(session_cookie)(user)
    conversation = await Conversation.objects.acreate(user=user)
    socket, _ = await open_chat(server, conversation.pk, cookie)
    await socket.send(json.dumps({"type": "send", "content": "One more"}))
    frames = await frames_until(socket, "refused", "answer_finished")
    await socket.close()
    return frames[-1:]


async def test_while_a_worker_stops_no_answer_starts_and_nothing_is_left_half_begun(
    ai_settings, make_user
):
    """uvicorn closes a stopping worker's sockets and waits for its requests before it drains
    the answers; should a frame or a request reach it meanwhile all the same, it is refused with
    "restarting" before anything is saved (a question and an answer "being written" that no
    run writes would stay until marked interrupted)."""
    from codegen.models import Creation
    from iridium.live import runs
    from support.answers import start_answer
    from support.models import Ticket, TicketMessage
    from tests.helpers.sockets import frames_until, open_socket

    user = await sync_to_async(make_user)("ada")
    conversation = await Conversation.objects.acreate(user=user)
    ticket = await Ticket.objects.acreate(user=user, title="Help", description="It broke")
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await frames_until(socket, "ready")
    loop = asyncio.get_running_loop()
    assert await runs.drain(grace=1) == (0, 0)  # this worker stops
    try:
        for frame in ({"type": "send", "content": "Hello"}, {"type": "regenerate"}):
            await socket.send_json_to(frame)
            error = await socket.receive_json_from(timeout=5)
            assert (error["type"], error["code"]) == ("error", "restarting"), error
        assert await start_answer(ticket.pk) is False
        client = AsyncClient()
        await sync_to_async(client.force_login)(user)
        response = await client.post(
            "/generate/new/code/",
            {"prompt": "Add two numbers", "language": "python", "complexity": "simple"},
        )
        assert response.status_code == 503
    finally:
        runs._draining.discard(loop)
        await socket.disconnect()
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    assert await TicketMessage.objects.filter(ticket=ticket).acount() == 0
    assert await Creation.objects.acount() == 0
