"""Async Redis clients, one per event loop and address (a connection pool cannot cross loops)."""

import asyncio
import weakref

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
        client = by_url[url] = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=settings.REDIS_TIMEOUT,
            socket_connect_timeout=settings.REDIS_TIMEOUT,
        )
    return client


@receiver(setting_changed)
def _forget_clients(setting, **kwargs):
    if setting in ("REDIS_URL", "REDIS_TIMEOUT", "CACHES"):
        _clients.clear()
