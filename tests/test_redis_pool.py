"""Django's cache in every thread shares one Redis connection pool per address, instead of a
pool (and a new connection) per thread, that is per request under ASGI."""

import asyncio
import threading

from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from iridium.infra.redis import SharedConnectionPool
from tests.conftest import require

SHARED = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": settings.REDIS_URL or "redis://127.0.0.1:6379/1",
        "OPTIONS": {"pool_class": "iridium.infra.redis.SharedConnectionPool", "socket_timeout": 1},
    }
}


def test_one_pool_per_address_and_options():
    first = SharedConnectionPool.from_url("redis://127.0.0.1:6379/1", socket_timeout=1)
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/1", socket_timeout=1) is first
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/2", socket_timeout=1) is not first
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/1", socket_timeout=2) is not first


def pools_and_values_in_threads(count):
    """Each thread's cache object (Django makes one per thread) and what it read back."""
    found = []

    def work(index):
        cache = caches["default"]
        cache.set(f"pool-test-{index}", index, timeout=10)
        found.append(
            (cache, cache._cache._get_connection_pool(True), cache.get(f"pool-test-{index}"))
        )

    threads = [threading.Thread(target=work, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def test_threads_have_their_own_cache_objects_but_one_pool():
    require(settings.REDIS_URL, "REDIS_URL")
    with override_settings(CACHES=SHARED):
        found = pools_and_values_in_threads(4)
    caches_seen = {id(cache) for cache, _, _ in found}
    pools = {id(pool) for _, pool, _ in found}
    assert len(caches_seen) == 4 and len(pools) == 1
    assert sorted(value for _, _, value in found) == [0, 1, 2, 3]


def test_the_settings_use_the_shared_pool():
    require(settings.REDIS_URL, "REDIS_URL (the Redis cache)")
    assert settings.CACHES["default"]["OPTIONS"]["pool_class"] == (
        "iridium.infra.redis.SharedConnectionPool"
    )


async def test_more_calls_at_once_than_connections_wait_their_turn():
    """Hundreds of answers starting at once check their budgets together: past the pool's 100
    connections a call waits for one, instead of failing as if Redis were down."""
    require(settings.REDIS_URL, "REDIS_URL")
    from iridium.infra.redis import async_client

    client = async_client(settings.REDIS_URL)
    # Each holds its connection for 0.2 s (a blocking pop on an empty list).
    results = await asyncio.gather(
        *(client.blpop([f"iridium:test:empty:{n}"], timeout=0.2) for n in range(150))
    )
    assert results == [None] * 150
    await client.aclose()
