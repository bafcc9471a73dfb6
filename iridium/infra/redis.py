"""Redis connections: async clients, one per event loop and address (a connection pool cannot
cross loops), one connection pool per address for Django's cache in every thread, and the
connection class that every async client (ours and channels-redis's) uses."""

import asyncio
import functools
import hashlib
import threading
import weakref
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.exceptions
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
        pool = redis.asyncio.BlockingConnectionPool(
            **pool_options(
                url,
                max_connections=100,
                timeout=settings.REDIS_TIMEOUT,
                socket_timeout=settings.REDIS_TIMEOUT,
                socket_connect_timeout=settings.REDIS_TIMEOUT,
            )
        )
        client = by_url[url] = redis.asyncio.Redis(connection_pool=pool)
    return client


async def run_script(client: redis.asyncio.Redis, script: str, keys: list, arguments: list):
    """Run a Lua script by its SHA1 (EVALSHA), not its text, which Redis would otherwise
    receive and hash on every call; sent once (EVAL, which keeps it) when Redis does not know it
    (a restarted Redis has forgotten its scripts)."""
    try:
        return await client.evalsha(_sha1(script), len(keys), *keys, *arguments)
    except redis.exceptions.NoScriptError:
        return await client.eval(script, len(keys), *keys, *arguments)


@functools.cache
def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


class Connection(redis.asyncio.Connection):
    """redis-py's connection, with its writes bounded by `asyncio.timeout` instead of
    `asyncio.wait_for`.

    On Python 3.11, `wait_for` swallows a cancellation that arrives in the same turn of the loop
    as the write completes (CPython gh-86296, fixed in 3.12): the cancelled task goes on as if
    nothing happened. channels-redis's receive loop then never ends, so a closed socket's
    consumer, and with it a worker's shutdown, waited forever (1 in ~30 closes, measured).
    `asyncio.timeout` propagates the cancellation."""

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            async with asyncio.timeout(self.socket_timeout):
                self._writer.writelines(command)
                await self._writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise redis.exceptions.ConnectionError(
                f"Error while writing to socket: {error}"
            ) from error
        except BaseException:
            # A write cut short leaves the protocol in an unknown state: the connection goes.
            await self.disconnect(nowait=True)
            raise


class SSLConnection(Connection, redis.asyncio.SSLConnection):
    pass


def pool_options(url: str, **options) -> dict:
    """The keyword arguments of an async connection pool for `url` with `options`, connecting
    through `Connection` (or `SSLConnection` for rediss://; unix sockets keep redis-py's)."""
    found = {**options, **redis.asyncio.connection.parse_url(url)}
    scheme = urlsplit(url).scheme
    if scheme == "rediss":
        found["connection_class"] = SSLConnection
    elif scheme != "unix":
        found["connection_class"] = Connection
    return found


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
