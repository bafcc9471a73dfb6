"""Two workers of the production set-up (DEBUG off, PostgreSQL through the pool, Redis): a Stop
pressed when nothing runs stops nothing later, and however many sockets send at once across
workers, one question and one answer are written."""

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from tests.helpers.production import (
    Server,
    origin_of,
    production_environment,
    require_production_services,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workers(ai_settings):
    require_production_services()
    environment = production_environment(ai_base_url=ai_settings.AI_BASE_URL)
    servers = [Server(environment) for _ in range(2)]
    yield servers
    stops = [server.stop for server in servers]
    for stop in stops[:-1]:
        try:
            stop()
        except Exception:
            stops[-1]()
            raise
    stops[-1]()


async def connect(server, conversation_id, cookie):
    socket = await websockets.connect(
        f"ws://127.0.0.1:{server.port}/ws/chat/{conversation_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        origin=origin_of(server.url),
        max_queue=None,  # tabs read one after the other: the others' frames wait meanwhile
    )
    assert json.loads(await socket.recv())["type"] == "ready"
    return socket


async def until(socket, frame_type, timeout=20):
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames


async def test_a_stop_pressed_when_nothing_runs_stops_no_later_answer(workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tab_a = await connect(workers[0], conversation.pk, cookie)
    tab_b = await connect(workers[1], conversation.pk, cookie)
    await tab_b.send(json.dumps({"type": "stop"}))  # nothing is being written
    await asyncio.sleep(0.3)
    await tab_a.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.05]]"}))
    finished = (await until(tab_a, "answer_finished"))[-1]["message"]
    assert finished["status"] == "complete"
    await tab_a.close()
    await tab_b.close()


async def test_sockets_sending_at_once_across_workers_write_one_answer(workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tabs = [await connect(workers[index % 2], conversation.pk, cookie) for index in range(6)]
    await asyncio.gather(
        *(
            tab.send(
                json.dumps({"type": "send", "content": f"Question {index} [[demo:slow=0.05]]"})
            )
            for index, tab in enumerate(tabs)
        )
    )
    outcomes = []
    for tab in tabs:
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(tab.recv(), 20))
            frames.append(frame)
            if frame["type"] in ("error", "answer_finished"):
                break
        outcomes.append(frames)
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
