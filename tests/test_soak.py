"""The production set-up under a mixed load while things fail: `uvicorn --workers 2` with DEBUG
off, PostgreSQL through a small pool, a redis-server of its own, the demo provider and the
loopback PostHog server. Several users chat over websockets, generate code and file tickets over
HTTP; meanwhile Redis is restarted, PostgreSQL ends the workers' connections, and one worker is
sent SIGTERM (its supervisor starts another).

It checks what docs/deploying.md promises: every provider call has exactly one generation row
and one PostHog event; no answer the person saw start is lost; the database connections stay
within the pools; a budget is overspent by at most one call; /healthz is healthy at the end.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import connection
from django.db.models import Max, Sum

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium.ai.models import Generation, PriceOverride
from support.models import Ticket, TicketMessage
from tests.helpers.production import (
    Browser,
    Server,
    open_chat,
    production_environment,
    require_production_services,
    session_cookie,
)

# Its own time: a few hundred answers through two workers take about 100 s on a quiet machine.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

POOL_SIZE = 4
USERS = 4
ROUNDS = 26  # per user: a chat, a generation and, every other round, a ticket
APPLICATION = "iridium-soak"
COSTLY = "iridium-soak-costly"


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION]
        )
        return cursor.fetchone()[0]


def end_worker_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            [APPLICATION],
        )
        return cursor.fetchone()[0]


def worker_pids(server: Server) -> list[int]:
    """The supervisor's worker processes (not its other children, such as multiprocessing's
    resource tracker)."""
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid), "-f", "spawn_main"], capture_output=True, text=True
    ).stdout.split()
    return [int(pid) for pid in found]


class Load:
    """What the users saw: each answer that started, by kind and id."""

    def __init__(self):
        self.started: list[tuple[str, int]] = []
        self.refused = 0
        self.failed_to_start: list[str] = []


async def chat(server, user, load: Load, rng: random.Random):
    cookie = await sync_to_async(session_cookie)(user)
    conversation = await Conversation.objects.acreate(user=user)
    words = rng.randint(10, 40)
    content = f"Question {rng.random()} [[demo:slow=0.01]] [[demo:words={words}]]"
    try:
        socket, _ = await open_chat(server, conversation.pk, cookie, open_timeout=10)
        async with socket:
            await socket.send(json.dumps({"type": "send", "content": content}))
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if frame["type"] == "answer_started":
                    load.started.append(("chat", frame["message_id"]))
                elif frame["type"] == "refused":  # the page takes the answer back
                    load.started.remove(("chat", frame["message_id"]))
                    load.refused += 1
                    return
                elif frame["type"] in ("answer_finished", "error"):
                    return
    except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidStatus) as error:
        # A worker restarting closes its sockets (1012): an answer that started goes on.
        load.failed_to_start.append(f"chat: {error!r}")


def post(server, user, kind, rng) -> tuple[str, int] | str:
    browser = Browser(server.url, session_cookie(user), timeout=30)
    try:
        if kind == "creation":
            response = browser.post_form(
                "/generate/", "/generate/new/code/",
                {"prompt": f"Add numbers {rng.random()} [[demo:slow=0.01]]", "language": "python",
                 "framework": "", "complexity": "simple"},
            )  # fmt: skip
        else:
            response = browser.post_form(
                "/support/", "/support/tickets/new/",
                {"title": f"Help {rng.random()}", "description": "It broke [[demo:slow=0.01]]",
                 "priority": "normal", "category": "technical"},
            )  # fmt: skip
    except httpx.HTTPError as error:
        return f"{kind}: {error!r}"
    finally:
        browser.close()
    if response.status_code == 429:  # a limit: the form says so and keeps the text
        return "refused"
    if response.status_code != 302:
        return f"{kind}: {response.status_code}"
    return kind, int(response.headers["location"].rstrip("/").split("/")[-1])


async def user_load(server, user, load: Load, seed: int):
    rng = random.Random(seed)
    for round_number in range(ROUNDS):
        await chat(server, user, load, rng)
        kinds = ["creation"] + (["ticket"] if round_number % 2 else [])
        for kind in kinds:
            started = await asyncio.to_thread(post, server, user, kind, rng)
            if started == "refused":
                load.refused += 1
            elif isinstance(started, str):
                load.failed_to_start.append(started)
            else:
                load.started.append(started)


async def faults(server, private_redis, victims: list[int]):
    await asyncio.sleep(2)
    private_redis.kill()
    await asyncio.sleep(1.5)
    private_redis.start()
    await asyncio.sleep(1.5)
    assert await sync_to_async(end_worker_connections)() > 0
    await asyncio.sleep(1.5)
    [victim, *_] = worker_pids(server)
    victims.append(victim)
    os.kill(victim, signal.SIGTERM)  # the supervisor starts another


async def sample_connections(samples: list[int], stop: asyncio.Event):
    while not stop.is_set():
        samples.append(await sync_to_async(database_connections)())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def settled(timeout=40):
    """Every answer ended and every call's row completed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streaming = (
            await Message.objects.filter(status="streaming").acount()
            + await TicketMessage.objects.filter(status="streaming").acount()
            + await Creation.objects.filter(status="streaming").acount()
        )
        in_flight = await Generation.objects.filter(in_flight=True).acount()
        if not streaming and not in_flight:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"still streaming: {streaming}, calls in flight: {in_flight}")


async def answer_of(kind, pk):
    if kind == "chat":
        return await Message.objects.filter(pk=pk).afirst()
    if kind == "creation":
        return await Creation.objects.filter(pk=pk).afirst()
    ticket = await Ticket.objects.filter(pk=pk).afirst()
    return await TicketMessage.objects.filter(ticket=ticket, kind="assistant").afirst()


async def test_the_production_set_up_under_load_and_faults(
    ai_settings, demo_provider_server, posthog_server, fake_posthog, private_redis, make_user,
    plans, capsys,
):  # fmt: skip
    require_production_services()
    free = plans["free"]
    free.max_answers_in_flight = 10
    free.daily_request_limit = 10_000
    await free.asave()
    # One user's plan is costly and small, so that the soak also spends a budget out.
    pro = plans["pro"]
    pro.default_model = COSTLY
    pro.monthly_budget_usd = Decimal("6.00")
    pro.max_output_tokens = 100
    pro.max_answers_in_flight = 10
    await pro.asave()
    await PriceOverride.objects.acreate(
        model=COSTLY, input_usd_per_mtok=Decimal(2000), output_usd_per_mtok=Decimal(8000)
    )
    users = [
        await sync_to_async(make_user)(f"soak{index}", plan="pro" if index == 0 else "free")
        for index in range(USERS)
    ]
    environment = production_environment(
        ai_base_url=ai_settings.AI_BASE_URL,
        posthog_url=posthog_server.url,
        REDIS_URL=private_redis.url,
        REDIS_RETRY_SECONDS=1,
        DB_POOL_MAX_SIZE=POOL_SIZE,
        PGAPPNAME=APPLICATION,
        AI_CALL_STALE_SECONDS=5,
    )
    provider = demo_provider_server.app
    calls_before = provider.requests_seen
    server = Server(environment, workers=2)
    load, samples, stop_sampling, victims = Load(), [], asyncio.Event(), []
    started = time.monotonic()
    try:
        sampling = asyncio.create_task(sample_connections(samples, stop_sampling))
        await asyncio.gather(
            faults(server, private_redis, victims),
            *(user_load(server, user, load, seed) for seed, user in enumerate(users)),
        )
        await settled()
        health = await asyncio.to_thread(httpx.get, f"{server.url}/healthz", timeout=10)
        workers_at_end = worker_pids(server)
        stop_sampling.set()
        await sampling
    finally:
        server.stop(signal.SIGTERM, 60)
    calls = provider.requests_seen - calls_before

    rows = [g async for g in Generation.objects.filter(cache_hit=False)]
    events = fake_posthog.wait_for(len(rows), name="$ai_generation", timeout=10)
    event_spans = [e["properties"]["$ai_span_id"] for e in events]
    lost = []
    for kind, pk in load.started:
        if kind == "ticket" and not await Ticket.objects.filter(pk=pk).aexists():
            lost.append((kind, pk, "no ticket"))
            continue
        answer = await answer_of(kind, pk)
        if answer is None and kind == "ticket":
            continue  # its first answer was refused: the assistant answers when it is opened
        # The person saw it start: it ends complete, whatever failed meanwhile (a worker
        # stopping lets it finish; a database that ended the connection gets it saved again).
        if answer is None or answer.status != "complete" or not answer.content:
            lost.append((kind, pk, answer and answer.status, answer and answer.error))
    costly = await Generation.objects.filter(user=users[0]).aaggregate(
        spent=Sum("total_cost_usd"), most=Max("reserved_cost_usd")
    )
    overspend = (costly["spent"] or 0) - pro.monthly_budget_usd
    with capsys.disabled():  # the figures, in CI's log too
        print(
            f"\nsoak: seconds={time.monotonic() - started:.0f} answers={len(load.started)}"
            f" refused={load.refused} failed_to_start={len(load.failed_to_start)} calls={calls}"
            f" rows={len(rows)} events={len(events)} lost={len(lost)}"
            f" max_connections={max(samples)} overspend={overspend:.4f}"
            f" most_one_call={costly['most']} workers_at_end={len(workers_at_end)}"
        )
        print("failed to start:", load.failed_to_start)
        print("lost:", lost)
    assert len(load.started) > 200 and load.refused > 0  # the costly user hit the budget
    assert calls == len(rows)  # every provider call has exactly one row...
    counted = Counter(event_spans)
    odd = {row.span_id: (counted[row.span_id], row.finish_reason, row.error[:80])
           for row in rows if counted[row.span_id] != 1}  # fmt: skip
    assert not odd and len(event_spans) == len(rows), odd  # ...and one event
    assert lost == [], lost
    assert max(samples) <= 3 * POOL_SIZE  # two workers, and one more while one restarts
    assert overspend <= costly["most"]
    assert health.status_code == 200, health.text
    # The worker sent SIGTERM was replaced: two workers again, the stopped one not among them.
    assert len(workers_at_end) == 2 and victims[0] not in workers_at_end, (victims, workers_at_end)
