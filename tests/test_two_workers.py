"""Two ASGI worker processes sharing PostgreSQL and Redis, as a deployment runs them: a chat
streamed by worker A is seen live by a tab on worker B, and limits hold across both."""

import json

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation
from tests.helpers.production import (
    frames_until,
    open_chat,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(worker, conversation_id, cookie):
    return (await open_chat(worker, conversation_id, cookie))[0]


async def test_a_stream_from_worker_a_is_seen_live_on_worker_b(two_workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tab_a = await connect(two_workers[0], conversation.pk, cookie)
    tab_b = await connect(two_workers[1], conversation.pk, cookie)
    await tab_a.send(json.dumps({"type": "send", "content": "Hello [[demo:slow=0.02]]"}))
    seen_by_b = await frames_until(tab_b, "answer_finished")
    seen_by_a = await frames_until(tab_a, "answer_finished")
    deltas = [f for f in seen_by_b if f["type"] == "delta"]
    assert len(deltas) > 3  # live, token by token, through channels-redis
    assert seen_by_b[-1]["message"] == seen_by_a[-1]["message"]
    assert seen_by_b[-1]["message"]["status"] == "complete"
    await tab_a.close()
    await tab_b.close()


async def test_limits_hold_across_both_workers(two_workers, user, plans):
    free = plans["free"]
    free.daily_request_limit = 3
    await free.asave()
    cookie = await sync_to_async(session_cookie)(user)
    outcomes = []
    for index in range(4):
        conversation = await Conversation.objects.acreate(user=user)
        ws = await connect(two_workers[index % 2], conversation.pk, cookie)
        await ws.send(json.dumps({"type": "send", "content": f"question {index}"}))
        frames = await frames_until(ws, "answer_finished" if index < 3 else "refused")
        outcomes.append(frames[-1]["type"])
        await ws.close()
    assert outcomes == ["answer_finished", "answer_finished", "answer_finished", "refused"]


async def test_stop_pressed_on_worker_b_stops_the_answer_on_worker_a(two_workers, user):
    conversation = await Conversation.objects.acreate(user=user)
    cookie = await sync_to_async(session_cookie)(user)
    tab_a = await connect(two_workers[0], conversation.pk, cookie)
    tab_b = await connect(two_workers[1], conversation.pk, cookie)
    long_answer = "A long story [[demo:slow=0.05]] [[demo:words=400]]"
    await tab_a.send(json.dumps({"type": "send", "content": long_answer}))
    await frames_until(tab_b, "delta")
    await tab_b.send(json.dumps({"type": "stop"}))
    finished = (await frames_until(tab_b, "answer_finished"))[-1]["message"]
    assert finished["status"] == "stopped" and 0 < len(finished["content"].split()) < 400
    await tab_a.close()
    await tab_b.close()
