"""Sockets over Redis: frames reach this worker's sockets directly and once, other workers'
channels through channels-redis only when they are in the group, and this worker's sockets even
while Redis is unreachable; a quiet socket stays open."""

import asyncio
import json
import logging
import time

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import override_settings

from chat.models import Conversation
from iridium.live import fanout, protocol
from tests.conftest import require
from tests.helpers.sockets import frames_until, idle, open_socket


@pytest.fixture
def redis_layer():
    require(settings.REDIS_URL, "REDIS_URL")
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    fanout._memberships.clear()
    return layer


async def test_this_workers_socket_gets_each_frame_once(redis_layer, ai_settings, user):
    conversation = await Conversation.objects.acreate(user=user)
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await socket.receive_json_from()
    await socket.send_json_to({"type": "send", "content": "Tell me [[demo:words=40]]"})
    frames = await frames_until(socket, "answer_finished")
    deltas = [f for f in frames if f["type"] == "delta"]
    offsets = [f["offset"] for f in deltas]
    assert offsets == sorted(set(offsets))  # no frame twice
    text = "".join(f["text"] for f in deltas)
    assert text == frames[-1]["message"]["content"]
    await idle("chat", conversation.pk)
    await socket.disconnect()


async def test_frames_reach_another_workers_channel_in_the_group(redis_layer, ai_settings, user):
    # Another worker: a layer of its own (its own client prefix) with a channel in the group.
    other_worker = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    channel = await other_worker.new_channel()
    conversation = await Conversation.objects.acreate(user=user)
    group = f"chat-{conversation.pk}"
    await other_worker.group_add(group, channel)
    try:
        socket, connected, _ = await open_socket(user, "chat", conversation.pk)
        assert connected
        await socket.receive_json_from()
        await socket.send_json_to({"type": "send", "content": "Tell me [[demo:words=20]]"})
        local = await frames_until(socket, "answer_finished")
        relayed = []
        while not relayed or relayed[-1]["type"] != "answer_finished":
            message = await asyncio.wait_for(other_worker.receive(channel), 5)
            assert message["type"] == "stream.frame"
            relayed.append(message["frame"])
        # The same frames, in the same order, as this worker's socket saw from the first answer
        # frame (the other worker's channel was in the group before the question was sent).
        assert relayed == [f for f in local if f["type"] != "ready"][-len(relayed) :]
        assert {"answer_started", "delta", "answer_finished"} <= {f["type"] for f in relayed}
        await idle("chat", conversation.pk)
        await socket.disconnect()
    finally:
        await other_worker.group_discard(group, channel)
        await other_worker.flush()


async def test_many_groups_members_are_read_together_and_a_late_member_gets_frames(
    redis_layer, monkeypatch
):
    """Fifty answers streaming at once: their groups' members are read in a few rounds a
    second, not at every group's own time; a tab that opens on another worker mid-answer gets
    its frames within MEMBERS_SECONDS."""
    from iridium.live import channels_redis

    rounds = []
    read = channels_redis.members

    async def counted(layer, groups):
        rounds.append(len(groups))
        return await read(layer, groups)

    monkeypatch.setattr(channels_redis, "members", counted)
    other_worker = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    channel = await other_worker.new_channel()
    groups = [f"chat-together-{n}" for n in range(50)]
    try:
        started = time.monotonic()
        for tick in range(40):  # 2 s, a frame to each group every 50 ms, as tokens come:
            frame = {"type": "delta", "offset": tick, "text": "x"}
            for first in range(0, len(groups), 5):  # to five groups at a time, 5 ms apart
                batch = groups[first : first + 5]
                await asyncio.gather(*(fanout.group_send(group, frame) for group in batch))
                await asyncio.sleep(0.005)
            if tick == 10:  # after 0.5 s, a tab of another worker opens the last answer
                await other_worker.group_add(groups[-1], channel)
        elapsed = time.monotonic() - started
        first = await asyncio.wait_for(other_worker.receive(channel), 5)
        assert first["frame"]["type"] == "delta"
        # Frames from at most MEMBERS_SECONDS (and a round's pause) after the tab joined.
        missed = first["frame"]["offset"] - 10
        assert missed * 0.05 <= fanout.MEMBERS_SECONDS + 0.2, missed
        # 2,000 frames. Each batch of answers starting reads its groups (ten rounds); then each
        # group is read about every MEMBERS_SECONDS, all of them in the same rounds.
        starts = len(groups) // 5
        assert sum(rounds) <= len(groups) * (elapsed / fanout.MEMBERS_SECONDS + 2)
        assert len(rounds) - starts <= elapsed / fanout.MEMBERS_SECONDS + 2, rounds
    finally:
        await other_worker.group_discard(groups[-1], channel)
        await other_worker.flush()


async def test_this_workers_sockets_get_frames_while_redis_is_unreachable(
    redis_layer, caplog, monkeypatch
):
    received = []

    class Socket:  # the one thing a local socket must do
        async def send_encoded(self, frame, text):
            assert json.loads(text) == frame
            received.append(frame)

    unreachable = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_timeout": 0.5}]},
        }
    }
    socket = Socket()
    fanout.subscribe("chat-unreachable", socket)
    monkeypatch.setattr(fanout, "_last_warning", 0.0)
    try:
        with override_settings(CHANNEL_LAYERS=unreachable), caplog.at_level(logging.WARNING):
            for offset in range(3):
                frame = {"type": "delta", "offset": offset, "text": "x"}
                await fanout.group_send("chat-unreachable", frame)
    finally:
        fanout.unsubscribe("chat-unreachable", socket)
    assert [f["offset"] for f in received] == [0, 1, 2]
    warnings = [r for r in caplog.records if "could not read which workers" in r.getMessage()]
    assert len(warnings) == 1  # not one per frame
    # Redis is not asked again at every frame while it is unreachable.
    [(until, others)] = [
        v for g, v in fanout._memberships.get().known.items() if g == "chat-unreachable"
    ]
    assert others == [] and until - time.monotonic() > fanout.MEMBERS_SECONDS


async def test_a_quiet_socket_stays_open(redis_layer, ai_settings, user):
    """Longer than channels-redis's blocking read (5 s), which redis-py 8's default read
    timeout (5 s) used to cut: every quiet socket was dropped."""
    conversation = await Conversation.objects.acreate(user=user)
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await socket.receive_json_from()
    await asyncio.sleep(redis_layer.brpop_timeout + 1.5)
    assert await socket.receive_nothing(timeout=0.1)
    await socket.send_json_to({"type": "send", "content": "Still there?"})
    frames = await frames_until(socket, "answer_finished")
    assert frames[-1]["message"]["status"] == "complete"
    await idle("chat", conversation.pk)
    await socket.disconnect()


async def test_an_answers_last_frame_reaches_other_workers_once_redis_is_back(
    private_redis, monkeypatch
):
    """An answer that ends while Redis is away: its last frame is held back, and goes to the
    sockets of other workers that are in the group once Redis can be read again (as a socket
    rejoins when Redis comes back), once to each, so no tab shows it as still being written."""
    monkeypatch.setattr(fanout, "RETRY_SECONDS", 0.3)
    config = {"hosts": [{"address": private_redis.url, "socket_timeout": 0.5}]}
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    group = "chat-held"
    finished = protocol.answer_finished(7, {"id": 7, "status": "complete"}, "<p>Done</p>")
    with override_settings(CHANNEL_LAYERS=layers):
        fanout._memberships.clear()
        other_worker = RedisChannelLayer(**config)
        channel = await other_worker.new_channel()
        private_redis.kill()
        await fanout.group_send(group, {"type": "delta", "offset": 0, "text": "x"})
        await fanout.group_send(group, finished)  # Redis still away: held back
        assert group in fanout._memberships.get().held
        private_redis.start()
        await other_worker.group_add(group, channel)
        message = await asyncio.wait_for(other_worker.receive(channel), 10)
        assert message == {"type": "stream.frame", "frame": finished}
        # Once: the rounds that read the group again while the frame is held send it no more.
        await asyncio.sleep(fanout.MEMBERS_SECONDS * 3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other_worker.receive(channel), 0.5)
        await other_worker.group_discard(group, channel)
        await other_worker.flush()
        fanout._memberships.clear()
