"""A call or an answer that is alive but quiet (the model thinking before its first token, a call
that is not streamed) is not taken for dead, on its worker or another; and a call that was taken
for dead, yet ends after all, is recorded once, reported once and charged once.

The real service against the demo provider (its `[[demo:first=SECONDS]]` delays the answer),
the loopback PostHog server, PostgreSQL and Redis; recovery runs as any worker runs it; the
last test runs two production workers.
"""

import asyncio
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import Conversation, Message
from iridium import ai
from iridium.ai import posthog
from iridium.ai.budgets import KEY_PREFIX, NANOS
from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from iridium.ai.recovery import recover_interrupted_calls
from tests.conftest import require
from tests.helpers.production import (
    frames_until,
    open_chat,
    production_environment,
    require_production_services,
    running,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


def ask(user, text, trace_id):
    return ai.Request(
        user=user,
        feature="chat",
        messages=[{"role": "user", "content": text}],
        trace_id=trace_id,
    )


async def answer(request, stream):
    if stream:
        return [event async for event in ai.stream(request)][-1]
    return await ai.complete(request)


async def warm_up(user):
    """One call first: what a worker's first call loads (the SDK, its client) holds up the
    event loop for a moment, the heartbeat's with it, which would tell nothing of liveness."""
    await ai.complete(ask(user, "Hello", "warm-up"))
    await asyncio.to_thread(recorder.flush)


async def recovering_meanwhile(task):
    """Run recovery (as any worker does, but often) until `task` ends; how many calls it
    completed, and the rows in flight it saw each time."""
    completed, seen = 0, []
    while not task.done():
        completed += await recover_interrupted_calls()
        seen.append(await Generation.objects.filter(in_flight=True).acount())
        await asyncio.sleep(0.2)
    return completed, seen


async def generation_events(fake, span_id):
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)
    await asyncio.sleep(0.3)  # what the capture server is still taking in
    return [e for e in fake.events("$ai_generation") if e["properties"]["$ai_span_id"] == span_id]


@pytest.fixture
def redis_client():
    require(settings.REDIS_URL, "Redis (REDIS_URL)")
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def forget_counters(client, user):
    """The user's budget counters start again from the (new) table."""
    for key in client.scan_iter(match=f"{KEY_PREFIX}*user:{user.pk}:*"):
        client.delete(key)


def spent(client, user) -> Decimal:
    month = datetime.now(UTC).strftime("%Y-%m")
    return Decimal(int(client.get(f"{KEY_PREFIX}spent:user:{user.pk}:{month}"))) / NANOS


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_call_silent_before_its_first_token_is_not_taken_for_dead(
    ai_settings, user, fake_posthog, stream
):
    ai_settings.AI_READ_TIMEOUT = 10.0
    await warm_up(user)
    ai_settings.AI_CALL_STALE_SECONDS = 2  # beaten every 2/3 s
    request = ask(user, "Think first [[demo:first=5]]", "liveness-1")
    call = asyncio.create_task(answer(request, stream))
    completed, seen = await recovering_meanwhile(call)
    completion = call.result()

    assert completed == 0
    assert seen.count(1) >= 5  # in flight, and known to be alive, all along
    assert completion.text.startswith("Demo answer")
    await asyncio.to_thread(recorder.flush)
    [row] = [g async for g in Generation.objects.filter(trace_id="liveness-1")]
    assert not row.in_flight and row.finish_reason == "stop" and not row.is_error
    assert len(await generation_events(fake_posthog, row.span_id)) == 1


async def test_a_call_taken_for_dead_that_ends_after_all_is_recorded_and_charged_once(
    ai_settings, user, fake_posthog, redis_client
):
    ai_settings.AI_READ_TIMEOUT = 10.0
    forget_counters(redis_client, user)
    await warm_up(user)
    before = spent(redis_client, user)
    # Beaten every 5 s: the heartbeat is held up (as by a database that does not answer) for
    # longer than the time after which recovery takes the call for dead.
    ai_settings.AI_CALL_STALE_SECONDS = 15
    call = asyncio.create_task(
        answer(ask(user, "Think first [[demo:first=2]]", "liveness-2"), True)
    )
    await asyncio.sleep(1)
    ai_settings.AI_CALL_STALE_SECONDS = 0.5
    assert await recover_interrupted_calls() == 1
    [taken] = [g async for g in Generation.objects.filter(trace_id="liveness-2")]
    assert taken.finish_reason == "interrupted" and not taken.in_flight
    estimate = taken.total_cost_usd
    assert estimate > 0 and spent(redis_client, user) == before + estimate

    completion = await call
    await asyncio.to_thread(recorder.flush)
    [row] = [g async for g in Generation.objects.filter(trace_id="liveness-2")]
    # The row says what happened; PostHog heard of the call once (as interrupted, from the
    # worker that took it for dead); budgets count what it really cost, once.
    assert not row.in_flight and row.finish_reason == "stop" and not row.is_error
    assert row.output_tokens == completion.usage.output_tokens > 0
    assert row.total_cost_usd == completion.cost.total_usd != estimate
    events = await generation_events(fake_posthog, row.span_id)
    assert [e["properties"]["$ai_is_error"] for e in events] == [True]
    assert spent(redis_client, user) == before + row.total_cost_usd
    assert row.properties["reportedInterrupted"] is True
    month = datetime.now(UTC).strftime("%Y-%m")
    assert not redis_client.hlen(f"{KEY_PREFIX}held:user:{user.pk}:{month}")


# --- Across workers, as production runs them ----------------------------------------------


@pytest.fixture
def workers(ai_settings, posthog_server, fake_posthog):
    """Two workers that take a call for dead after 2 s without a sign of life, and an answer
    for interrupted after 2 s (each looks for calls to complete every second)."""
    require_production_services()
    environment = production_environment(
        ai_base_url=ai_settings.AI_BASE_URL,
        posthog_url=posthog_server.url,
        AI_CALL_STALE_SECONDS=2,
        ANSWER_STALE_SECONDS=2,
        AI_READ_TIMEOUT=30,
    )
    with running(environment, 2, graceful=False) as servers:
        yield servers


async def until(socket, *frame_types, timeout=30):
    return (await frames_until(socket, *frame_types, timeout=timeout))[-1]


async def test_an_answer_waiting_for_its_first_token_is_neither_interrupted_nor_doubled(
    workers, user, fake_posthog
):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tab_a, _ = await open_chat(workers[0], conversation.pk, cookie)
    await tab_a.send(json.dumps({"type": "send", "content": "Think first [[demo:first=7]]"}))
    await until(tab_a, "answer_started")
    await asyncio.sleep(4.5)  # more than twice the time after which it would be taken for dead

    # Another worker's tab opens the conversation (which marks interrupted answers) and sends.
    tab_b, ready = await open_chat(workers[1], conversation.pk, cookie)
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.status == "streaming"
    assert ready["in_progress"]["message_id"] == answer.pk
    await tab_b.send(json.dumps({"type": "send", "content": "Are you there?"}))
    refused = await until(tab_b, "error")
    assert refused["code"] == "busy"
    [row] = [g async for g in Generation.objects.filter(user=user)]
    assert row.in_flight and row.finish_reason == ""

    finished = await until(tab_a, "answer_finished")
    assert finished["message"]["status"] == "complete"
    assert finished["message"]["content"].startswith("Demo answer")
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    [event] = fake_posthog.wait_for(1, name="$ai_generation", timeout=10)
    await asyncio.sleep(3)  # a second event would have come by now
    assert len(fake_posthog.events("$ai_generation")) == 1
    [row] = [g async for g in Generation.objects.filter(user=user)]
    assert not row.in_flight and row.finish_reason == "stop" and not row.is_error
    assert event["properties"]["$ai_span_id"] == row.span_id
    assert not event["properties"]["$ai_is_error"]
    await tab_a.close()
    await tab_b.close()


def test_recovery_never_deadlocks_with_a_statement_that_locks_every_table(django_db_blocker):
    """Every worker reads its candidates every few seconds. A read that joined tables took their
    locks one by one and, about once in fifteen flushes, deadlocked with the test suite's flush
    (one TRUNCATE of every table, which locks them in turn), failing a test's teardown. Each
    read now holds one table's lock at a time; the tables it reads are locked here as TRUNCATE
    locks them, the people's before the calls'."""
    from django.db import connection, transaction

    from iridium.accounts.models import Organization, Plan, User

    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    tables = ", ".join(m._meta.db_table for m in (User, Organization, Plan, Generation))
    failures, done = [], threading.Event()

    def recover_again_and_again():
        while not done.is_set():
            try:
                asyncio.run(recover_interrupted_calls())
            except Exception as error:  # any failure is the finding
                failures.append(error)
        connection.close()

    reader = threading.Thread(target=recover_again_and_again)
    reader.start()
    try:
        for _ in range(300):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    finally:
        done.set()
        reader.join()
    assert failures == []
