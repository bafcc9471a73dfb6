"""Redis stops during use and comes back: pages still serve, the AI cache is bypassed, budgets
are checked against the database, and Redis is used again once it answers.

A private redis-server is started on a free port for this, so that the shared one is untouched.
"""

import asyncio

import pytest
import redis
from asgiref.sync import sync_to_async
from django.urls import reverse

from iridium import ai
from iridium.ai import budgets, errors
from iridium.ai import cache as response_cache
from iridium.ai.models import Generation
from tests.helpers.ai import ask, spend


@pytest.fixture
def on_private_redis(ai_settings, private_redis):
    ai_settings.REDIS_URL = private_redis.url
    ai_settings.REDIS_RETRY_SECONDS = 0.2
    ai_settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    budgets.breaker.reset()
    response_cache.breaker.reset()
    return private_redis


@pytest.fixture
def provider_calls(demo_provider_server):
    app = demo_provider_server.app
    start = app.requests_seen
    return lambda: app.requests_seen - start


async def cached_call(user, text="same question"):
    return await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask(text), trace_id="redis-1", cache=True)
    )


async def test_redis_stops_and_comes_back(on_private_redis, user, async_client, provider_calls):
    redis_server = on_private_redis
    await cached_call(user)
    assert (await cached_call(user)).from_cache
    assert provider_calls() == 1
    assert redis_server.keys("iridium:budget:requests:*")

    redis_server.stop()
    await async_client.aforce_login(user)
    page = await async_client.get(reverse("home"))
    assert page.status_code == 200  # pages still serve
    health = await async_client.get("/healthz")
    assert health.status_code == 503 and health.json()["unreachable"] == ["cache"]

    answered = await cached_call(user)  # the cache is bypassed, the provider answers
    assert not answered.from_cache and provider_calls() == 2

    await sync_to_async(spend)("1.00", user=user)  # the budget is used up: the table says so
    with pytest.raises(errors.LimitReached):
        await cached_call(user, "another question")
    assert provider_calls() == 2

    redis_server.start()
    await asyncio.sleep(0.3)  # past REDIS_RETRY_SECONDS
    with pytest.raises(errors.LimitReached):  # counters rebuilt from the table
        await cached_call(user, "a third question")
    assert redis_server.keys("iridium:budget:spent:*")

    # Budget renewed: the cache works again too.
    await Generation.objects.filter(trace_id="earlier").adelete()
    redis.Redis.from_url(redis_server.url).delete(*redis_server.keys("iridium:budget:spent:*"))
    await cached_call(user, "a fourth question")
    assert (await cached_call(user, "a fourth question")).from_cache


async def test_counters_that_keep_vanishing_admit_by_the_tables(
    on_private_redis, user, monkeypatch
):
    """Found by the soak: while Redis came back, a reconciliation emptied the counters as fast as
    a call set them up, and the call failed ("counters could not be initialised") with its answer
    already started. It is admitted by the tables instead, and Redis is not taken for down."""
    from decimal import Decimal

    from iridium.ai.callers import load_caller

    caller = await sync_to_async(load_caller)(user)
    emptied = []

    async def empty_them(store, reservation, index):  # what the reconciliation did meanwhile
        emptied.append(index)
        await store.client.flushdb()

    monkeypatch.setattr(budgets._RedisStore, "_initialise", empty_them)
    reservation = await budgets.reserve(caller, span_id="s-vanish", first=True,
                                        amount=Decimal("0.01"))  # fmt: skip
    assert emptied and isinstance(reservation.store, budgets._DatabaseStore)
    assert budgets.breaker.closed
