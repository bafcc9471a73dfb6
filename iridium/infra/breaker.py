"""A circuit breaker for an optional dependency (Redis): after a failure, stop trying it for a
few seconds, so that a dependency that hangs costs one timeout, not one per request."""

import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)


class Breaker:
    def __init__(self, name: str):
        self.name = name
        self._open_until = float("-inf")

    @property
    def cooldown(self) -> float:
        return settings.REDIS_RETRY_SECONDS

    @property
    def closed(self) -> bool:
        """True when the dependency may be tried."""
        return time.monotonic() >= self._open_until

    def trip(self, error: BaseException, consequence: str) -> None:
        if self.closed:
            logger.warning(
                "%s unreachable, %s for %.0f s: %s", self.name, consequence, self.cooldown, error
            )
        self._open_until = time.monotonic() + self.cooldown

    def reset(self) -> None:
        self._open_until = float("-inf")
