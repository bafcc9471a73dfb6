"""What a call cost: genai-prices (bundled data, no network), with admin overrides per model.

A model with no known price costs `None` ("unknown"), never 0.
"""

import logging
import time
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from .models import PriceOverride
from .types import Cost, Usage

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
OVERRIDES_TTL_SECONDS = 30.0


class _Overrides:
    """Price overrides kept in memory; reloaded at most every OVERRIDES_TTL_SECONDS and at once
    when an override changes in this process (signals in iridium.ai.apps)."""

    def __init__(self):
        self._by_model: dict[str, PriceOverride] = {}
        self._loaded_at = float("-inf")

    def invalidate(self):
        self._loaded_at = float("-inf")

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at > OVERRIDES_TTL_SECONDS

    async def refresh_if_stale(self):
        if self.stale():
            self._by_model = {o.model: o async for o in PriceOverride.objects.all()}
            self._loaded_at = time.monotonic()

    def refresh_if_stale_sync(self):
        if self.stale():
            self._by_model = {o.model: o for o in PriceOverride.objects.all()}
            self._loaded_at = time.monotonic()

    def get(self, model: str) -> PriceOverride | None:
        return self._by_model.get(model)


overrides = _Overrides()


def price(*, provider: str, model: str, usage: Usage) -> Cost | None:
    """Price `usage` (input tokens include the cached ones, which are priced as cached)."""
    override = overrides.get(model)
    if override is not None:
        return _price_with_override(override, usage)
    return _catalogue_price(provider, model, usage)


@lru_cache(maxsize=4096)
def _catalogue_price(provider: str, model: str, usage: Usage) -> Cost | None:
    # genai-prices takes about 0.3 ms per calculation; identical usages are common (cached
    # prompts, short answers), so the results are memoised.
    try:
        calculated = calc_price(
            PriceUsage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cached_tokens,
                output_tokens=usage.output_tokens,
            ),
            model,
            provider_id=provider,
        )
    except LookupError:
        return None
    except ValueError as error:  # inconsistent usage from a provider (cached > input)
        logger.warning("cannot price usage of %s: %s", model, error)
        return None
    return Cost(calculated.input_price, calculated.output_price, calculated.total_price)


def _price_with_override(override: PriceOverride, usage: Usage) -> Cost:
    cached_rate = override.cached_input_usd_per_mtok
    if cached_rate is None:
        cached_rate = override.input_usd_per_mtok
    uncached = usage.input_tokens - usage.cached_tokens
    input_usd = (
        uncached * override.input_usd_per_mtok + usage.cached_tokens * cached_rate
    ) / MILLION
    output_usd = usage.output_tokens * override.output_usd_per_mtok / MILLION
    return Cost(input_usd, output_usd, input_usd + output_usd)
