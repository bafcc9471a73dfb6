"""The response cache: an identical request by the same user, answered from Django's cache
(Redis in production, local memory on the embedded default).

Keys are scoped to the user (`user:<id>:ai:<hash>`), so one user never receives another's
answer; anonymous calls and tool-using calls are never cached. A cache that cannot be reached
is bypassed: the call goes to the provider as if the cache were empty.
"""

import hashlib
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisSerializer

from iridium.infra.breaker import Breaker
from iridium.infra.redis import async_client

breaker = Breaker("AI response cache")


def ttl_for(feature: str, requested: bool | int | None) -> int:
    """Seconds to keep an answer: an explicit number, else the feature's TTL, else the default."""
    if requested is None or requested is False:
        return 0
    if requested is not True:
        return int(requested)
    return settings.AI_CACHE_TTLS.get(feature, settings.AI_CACHE_TTL_SECONDS)


def key_for(*, user_id: int, model: str, messages: list, parameters: dict) -> str:
    material = json.dumps(
        {"model": model, "messages": messages, "parameters": parameters},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return f"user:{user_id}:ai:{hashlib.sha256(material.encode()).hexdigest()}"


async def get(key: str):
    """The cached answer for `key`, or None (also when the cache is unreachable)."""
    if not breaker.closed:
        return None
    try:
        client = _redis_client()
        if client is not None:
            data = await client.get(cache.make_and_validate_key(key))
            return None if data is None else _serializer.loads(data)
        return await _cache_call(cache.get, key)
    except Exception as error:  # any backend error: answer as if the cache were empty
        breaker.trip(error, "bypassing the cache")
        return None


async def put(key: str, value, ttl: int) -> None:
    if not breaker.closed:
        return
    try:
        client = _redis_client()
        if client is not None:
            await client.set(cache.make_and_validate_key(key), _serializer.dumps(value), ex=ttl)
        else:
            await _cache_call(cache.set, key, value, timeout=ttl)
    except Exception as error:
        breaker.trip(error, "bypassing the cache")


# Django's RedisCache has no async methods; its keys and pickled values are written here with
# an async client instead, so that a cache hit costs no thread hop. Django's own `cache.get`,
# `delete` and `clear` see the same entries.
_serializer = RedisSerializer()


def _redis_client():
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return async_client(backend._servers[0])


async def _cache_call(method, *args, **kwargs):
    # Local memory answers in microseconds: no thread needed. Any other backend gets one.
    if isinstance(caches["default"], LocMemCache):
        return method(*args, **kwargs)
    return await sync_to_async(method, thread_sensitive=False)(*args, **kwargs)


def forget_user(user_id: int) -> int:
    """Delete every cached answer of a user (when the user is deleted). Returns how many."""
    backend = caches["default"]
    prefix = backend.make_key(f"user:{user_id}:")
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return client.delete(*keys) if keys else 0
    if isinstance(backend, LocMemCache):
        with backend._lock:
            keys = [key for key in backend._cache if key.startswith(prefix)]
            for key in keys:
                backend._cache.pop(key, None)
                backend._expire_info.pop(key, None)
        return len(keys)
    return 0
