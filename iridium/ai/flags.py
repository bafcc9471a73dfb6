"""Feature flags that steer AI calls, evaluated without ever blocking the event loop.

Values come from admin overrides (`FlagOverride`, always winning, working with PostHog down or
absent), then from PostHog when it is configured (remote evaluation, or local evaluation with
POSTHOG_SECRET_KEY), then from defaults. PostHog's client blocks for up to its timeout per
remote evaluation, so it runs in a small thread pool: a request uses the values cached for its
user; the call that starts a user's first evaluation waits for it at most AI_FLAGS_WAIT_SECONDS,
and calls made while it is in flight do not wait at all. Past that, or when PostHog is
unreachable, a call uses the last known values, or the defaults.
"""

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from iridium.ai import posthog
from iridium.infra.db import reading_again_if_dropped

from .models import FlagOverride

logger = logging.getLogger(__name__)

ADVANCED_MODEL = "advanced-ai-model"
KILL_SWITCH = "ai-kill-switch"
EXPERIMENT = "ai-model-experiment"
FLAG_KEYS = (ADVANCED_MODEL, KILL_SWITCH, EXPERIMENT)

OVERRIDES_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class Flag:
    value: bool | str | None  # None: the flag has no value (off, unknown)
    payload: Any = None
    source: str = "default"  # override, posthog, last-known or default


DEFAULT = Flag(None)


class FlagStore:
    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="iridium-flags")
        self._evaluated: dict[str, tuple[float, dict[str, Flag]]] = {}
        self._in_flight: dict[str, Future] = {}
        self._overrides: dict[str, FlagOverride] = {}
        self._overrides_loaded_at = float("-inf")

    def forget(self, **kwargs):
        self._evaluated.clear()
        self._overrides_loaded_at = float("-inf")

    async def evaluate(self, distinct_id: str, groups: dict) -> dict[str, Flag]:
        await reading_again_if_dropped(self._refresh_overrides)
        flags = dict.fromkeys(FLAG_KEYS, DEFAULT)
        if posthog.client() is not None:
            flags.update(await self._from_posthog(distinct_id, groups))
        for key, override in self._overrides.items():
            flags[key] = Flag(override.parsed_value(), override.payload, "override")
        return flags

    async def _refresh_overrides(self):
        if time.monotonic() - self._overrides_loaded_at > OVERRIDES_TTL_SECONDS:
            self._overrides = {o.key: o async for o in FlagOverride.objects.filter(active=True)}
            self._overrides_loaded_at = time.monotonic()

    async def _from_posthog(self, distinct_id: str, groups: dict) -> dict[str, Flag]:
        cached = self._evaluated.get(distinct_id)
        fresh = cached is not None and time.monotonic() - cached[0] < settings.AI_FLAGS_TTL_SECONDS
        if fresh:
            return cached[1]
        future = self._in_flight.get(distinct_id)
        if future is not None:
            # Another call is already waiting for this evaluation: only that one waits (for at
            # most AI_FLAGS_WAIT_SECONDS); this one takes what is known, or the defaults, now.
            return cached[1] if cached is not None else {}
        future = self._executor.submit(self._evaluate_remotely, distinct_id, groups)
        self._in_flight[distinct_id] = future
        future.add_done_callback(lambda _: self._in_flight.pop(distinct_id, None))
        if cached is not None:
            return cached[1]  # stale while the new evaluation runs in the background
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), settings.AI_FLAGS_WAIT_SECONDS
            )
        except TimeoutError:
            return {}  # the defaults, this time; the evaluation goes on and is kept
        except Exception:
            logger.exception("feature flag evaluation failed")
            return {}

    def _evaluate_remotely(self, distinct_id: str, groups: dict) -> dict[str, Flag]:
        client = posthog.client()
        if client is None:
            return {}
        evaluation = client.evaluate_flags(
            distinct_id, groups=groups or None, flag_keys=list(FLAG_KEYS)
        )
        previous = self._evaluated.get(distinct_id, (0, {}))[1]
        flags = {}
        for key in FLAG_KEYS:
            value = evaluation.get_flag(key)
            if value is None:
                # Unknown or unreachable: keep the last known value for this user, if any.
                if key in previous:
                    flags[key] = Flag(previous[key].value, previous[key].payload, "last-known")
                continue
            flags[key] = Flag(value, evaluation.get_flag_payload(key), "posthog")
        self._evaluated[distinct_id] = (time.monotonic(), flags)
        return flags


flag_store = FlagStore()
