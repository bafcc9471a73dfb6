"""Two ASGI worker processes sharing PostgreSQL and Redis, as a deployment runs them: a chat
streamed by worker A is seen live by a tab on worker B, and limits hold across both."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from chat.models import Conversation
from tests.conftest import require
from tests.helpers.production import origin_of

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def workers(ai_settings, demo_provider_server):
    database = settings.DATABASES["default"]
    on_postgresql = database["ENGINE"] == "django.db.backends.postgresql"
    require(on_postgresql and settings.REDIS_URL, "PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    user = database["USER"] or "postgres"
    host = database["HOST"] or "127.0.0.1"
    port = database["PORT"] or 5432
    environment = {
        **os.environ,
        # The test database, which the tests' transactions commit to.
        "DATABASE_URL": f"postgres://{user}:{database['PASSWORD'] or ''}@{host}:{port}"
        f"/{database['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": ai_settings.AI_BASE_URL,
        "POSTHOG_API_KEY": "",
        "IRIDIUM_ENV_FILE": "/nonexistent",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    processes, urls = [], []
    for _ in range(2):
        worker_port = free_port()
        command = [sys.executable, "-m", "uvicorn", "iridium.asgi:application"]
        command += ["--host", "127.0.0.1", "--port", str(worker_port), "--log-level", "warning"]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=environment))
        urls.append(f"127.0.0.1:{worker_port}")
    for url in urls:
        host_name, worker_port = url.split(":")
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((host_name, int(worker_port)), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "a worker did not start"
                time.sleep(0.1)
    yield urls
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def connect(worker, conversation_id, cookie):
    ws = await websockets.connect(
        f"ws://{worker}/ws/chat/{conversation_id}/",
        additional_headers={"Cookie": cookie},
        origin=origin_of(worker),
    )
    assert json.loads(await ws.recv())["type"] == "ready"
    return ws


async def until(ws, frame_type, timeout=15):
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames


async def test_a_stream_from_worker_a_is_seen_live_on_worker_b(workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(cookie_for)(user)
    tab_a = await connect(workers[0], conversation.pk, cookie)
    tab_b = await connect(workers[1], conversation.pk, cookie)
    await tab_a.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.02]]"}))
    seen_by_b = await until(tab_b, "answer_finished")
    seen_by_a = await until(tab_a, "answer_finished")
    deltas = [f for f in seen_by_b if f["type"] == "delta"]
    assert len(deltas) > 3  # live, token by token, through channels-redis
    assert seen_by_b[-1]["message"] == seen_by_a[-1]["message"]
    assert seen_by_b[-1]["message"]["status"] == "complete"
    await tab_a.close()
    await tab_b.close()


async def test_limits_hold_across_both_workers(workers, user, plans):
    free = plans["free"]
    free.daily_request_limit = 3
    await free.asave()
    cookie = await sync_to_async(cookie_for)(user)
    outcomes = []
    for index in range(4):
        conversation = await Conversation.objects.acreate(user=user)
        ws = await connect(workers[index % 2], conversation.pk, cookie)
        await ws.send(json.dumps({"type": "send", "content": f"question {index}"}))
        frames = await until(ws, "answer_finished") if index < 3 else await until(ws, "refused")
        outcomes.append(frames[-1]["type"])
        await ws.close()
    assert outcomes == ["answer_finished", "answer_finished", "answer_finished", "refused"]


async def test_stop_pressed_on_worker_b_stops_the_answer_on_worker_a(workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(cookie_for)(user)
    tab_a = await connect(workers[0], conversation.pk, cookie)
    tab_b = await connect(workers[1], conversation.pk, cookie)
    long_answer = "A long story [[demo:slow=0.05]] [[demo:words=400]]"
    await tab_a.send(json.dumps({"type": "send", "content": long_answer}))
    await until(tab_b, "delta")
    await tab_b.send(json.dumps({"type": "stop"}))
    finished = (await until(tab_b, "answer_finished"))[-1]["message"]
    assert finished["status"] == "stopped" and 0 < len(finished["content"].split()) < 400
    await tab_a.close()
    await tab_b.close()
