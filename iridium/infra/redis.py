"""Redis connections: async clients, one per event loop and address (a connection pool cannot
cross loops), and one connection pool per address for Django's cache in every thread."""

import asyncio
import threading
import weakref

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]]"
_clients = weakref.WeakKeyDictionary()


def async_client(url: str) -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    by_url = _clients.setdefault(loop, {})
    client = by_url.get(url)
    if client is None:
        # A blocking pool: with hundreds of answers starting at once, a call waits a moment for
        # a free connection instead of failing (redis-py 8 caps a pool at 100 connections and
        # raises "Too many connections" past that, which looked like Redis being down).
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=100,
            timeout=settings.REDIS_TIMEOUT,
            socket_timeout=settings.REDIS_TIMEOUT,
            socket_connect_timeout=settings.REDIS_TIMEOUT,
        )
        client = by_url[url] = redis.asyncio.Redis(connection_pool=pool)
    return client


@receiver(setting_changed)
def _forget_clients(setting, **kwargs):
    if setting in ("REDIS_URL", "REDIS_TIMEOUT", "CACHES"):
        _clients.clear()


class SharedConnectionPool(redis.ConnectionPool):
    """The `pool_class` of the Django cache: one pool per address and options, for all threads.

    Django makes a cache object, and so a connection pool, per thread; under ASGI each request's
    sync code runs in a new thread, so each request opened a new connection to Redis (a TCP
    handshake on every health check or cached lookup). redis-py's pools are thread-safe.
    """

    _pools: dict[str, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **options):
        key = f"{url} {sorted(options.items())!r}"
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = redis.ConnectionPool.from_url(url, **options)
            return pool
