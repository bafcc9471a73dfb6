"""Redis goes away under the production set-up (two workers, DEBUG off, PostgreSQL, a Redis of
its own): sockets still connect and stream what their worker writes, an open socket keeps its
answer to the end, no request waits on Redis for long, and once Redis is back the workers relay
each other's streams again."""

import asyncio
import json
import time

import httpx
import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation
from tests.helpers.production import (
    Browser,
    frames_until,
    open_chat,
    production_environment,
    require_production_services,
    running,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

LONG = "A long story [[demo:slow=0.05]] [[demo:words=60]]"


@pytest.fixture
def workers(ai_settings, private_redis):
    require_production_services()
    environment = production_environment(
        ai_base_url=ai_settings.AI_BASE_URL, REDIS_URL=private_redis.url, REDIS_RETRY_SECONDS=1
    )
    with running(environment, 2) as servers:
        yield servers
        private_redis.resume()


async def connect(server, conversation_id, cookie):
    return (await open_chat(server, conversation_id, cookie, open_timeout=5))[0]


async def test_streams_survive_redis_going_away_and_coming_back(workers, private_redis, user):
    cookie = await sync_to_async(session_cookie)(user)
    first = await Conversation.objects.acreate(user=user)
    tab = await connect(workers[0], first.pk, cookie)
    await tab.send(json.dumps({"type": "send", "content": LONG}))
    await frames_until(tab, "delta")

    private_redis.kill()  # mid-answer
    # The open socket keeps its answer to the end.
    finished = (await frames_until(tab, "answer_finished"))[-1]["message"]
    assert finished["status"] == "complete" and len(finished["content"].split()) >= 60

    # A new socket connects while Redis is away, and streams what its worker writes.
    second = await Conversation.objects.acreate(user=user)
    started = time.monotonic()
    other_tab = await connect(workers[1], second.pk, cookie)
    assert time.monotonic() - started < 5
    await other_tab.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.02]]"}))
    assert (await frames_until(other_tab, "answer_finished"))[-1]["message"]["status"] == "complete"

    # Redis comes back: a stream written by worker 0 is seen live by a tab on worker 1.
    private_redis.start()
    watcher = await connect(workers[1], first.pk, cookie)
    deadline = time.monotonic() + 20
    while True:
        await tab.send(json.dumps({"type": "send", "content": "Again [[demo:slow=0.05]]"}))
        answer = (await frames_until(tab, "answer_finished"))[-1]["message_id"]
        # The watcher's frames up to this answer's end: before them it may get the end of the
        # answer that finished while Redis was away (held back for other workers until then),
        # and the end of an answer not relayed live.
        frames = []
        while not frames or frames[-1].get("message_id") != answer:
            frames += await frames_until(watcher, "answer_finished")
        if sum(frame["type"] == "delta" and frame["message_id"] == answer for frame in frames) > 3:
            break  # token by token, through Redis again
        assert time.monotonic() < deadline, "the workers never relayed again"
    for socket in (tab, other_tab, watcher):
        await socket.close()


async def test_no_request_waits_long_on_a_paused_redis(workers, private_redis, user):
    private_redis.pause()  # Redis accepts connections and never answers
    browser = Browser(workers[0].url, await sync_to_async(session_cookie)(user))
    try:
        for _ in range(3):
            started = time.monotonic()
            response = await asyncio.to_thread(
                browser.post_form,
                "/generate/",
                "/generate/new/code/",
                {"prompt": f"Add numbers {time.monotonic()}", "language": "python",
                 "framework": "", "complexity": "simple"},
            )  # fmt: skip
            assert response.status_code == 302
            assert time.monotonic() - started < 5
        started = time.monotonic()
        health = await asyncio.to_thread(httpx.get, f"{workers[0].url}/healthz", timeout=10)
        assert health.status_code == 503 and "cache" in health.json()["unreachable"]
        assert time.monotonic() - started < 5
    finally:
        browser.close()
        private_redis.resume()
