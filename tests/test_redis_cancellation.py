"""A socket's consumer ends when its socket closes: the channel layer's receive, cancelled
while other workers' frames arrive, always ends (it did not, 1 time in ~30, through redis-py's
writes under asyncio.wait_for on Python 3.11), so neither a consumer nor a worker's shutdown
waits forever."""

import asyncio
import random

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from tests.conftest import require

ROUNDS = 150


async def test_a_cancelled_receive_always_ends():
    require(settings.REDIS_URL, "REDIS_URL")
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    layer = RedisChannelLayer(hosts=config["hosts"], prefix="iridium:test:cancel")
    other_worker = RedisChannelLayer(hosts=config["hosts"], prefix="iridium:test:cancel")
    channels: list[str] = []
    sending = True

    async def relay():  # frames from another worker, all the time
        while sending:
            if channels:
                await other_worker.send(random.choice(channels), {"type": "stream.frame"})
            await asyncio.sleep(random.random() * 0.01)

    relaying = asyncio.create_task(relay())
    random.seed(7)
    stuck = 0
    try:
        for _ in range(ROUNDS):
            channel = await layer.new_channel()
            channels.append(channel)
            receiving = asyncio.create_task(layer.receive(channel))
            await asyncio.sleep(random.random() * 0.03)
            channels.remove(channel)
            receiving.cancel()
            done, _ = await asyncio.wait([receiving], timeout=8)
            if not done:
                stuck += 1
                break
    finally:
        sending = False
        await relaying
        await layer.flush()
    assert stuck == 0
