"""A socket that stays quiet for longer than channels-redis's blocking read (5 s) stays open."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from chat.models import Conversation
from tests.conftest import services_required
from tests.test_chat_consumer import frames_until, idle, open_socket


async def test_a_quiet_socket_stays_open_over_redis(ai_settings, user):
    if not settings.REDIS_URL:
        if services_required():
            pytest.fail("CI sets REDIS_URL")
        pytest.skip("needs REDIS_URL (CI sets it): the channel layer is in memory without it")
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    conversation = await Conversation.objects.acreate(user=user)
    socket, connected, _ = await open_socket(user, conversation.pk)
    assert connected
    await socket.receive_json_from()
    # Longer than the layer's blocking pop: Redis answers "nothing yet" and the read goes on.
    await asyncio.sleep(layer.brpop_timeout + 1.5)
    assert await socket.receive_nothing(timeout=0.1)
    await socket.send_json_to({"type": "send", "content": "Still there?"})
    frames = await frames_until(socket, "answer_finished")
    assert frames[-1]["message"]["status"] == "complete"
    await idle(conversation.pk)
    await socket.disconnect()
