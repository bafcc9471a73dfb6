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
from django.core.cache import cache

from iridium.core.breaker import Breaker

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


def _get(key):
    if not breaker.closed:
        return None
    try:
        return cache.get(key)
    except Exception as error:  # any backend error: answer as if the cache were empty
        breaker.trip(error, "bypassing the cache")
        return None


def _set(key, value, ttl):
    if not breaker.closed:
        return
    try:
        cache.set(key, value, timeout=ttl)
    except Exception as error:
        breaker.trip(error, "bypassing the cache")


# One thread hop each: Django's cache backends are synchronous.
get = sync_to_async(_get, thread_sensitive=False)
put = sync_to_async(_set, thread_sensitive=False)
