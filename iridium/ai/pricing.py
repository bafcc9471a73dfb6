"""What a call cost: genai-prices, with admin overrides per model.

genai-prices prices with its bundled data (no network), unless AI_PRICES_UPDATE_URL is set: the
periodic job `iridium.ai.tasks.refresh_prices` then fetches the data from there once for the
whole install and stores it (PriceData), and every process installs the newest stored data on
the overrides' cadence (at most one query every OVERRIDES_TTL_SECONDS), so all hosts price alike.

A model with no known price costs `None` ("unknown"), never 0.
"""

import asyncio
import json
import logging
import time
from decimal import Decimal
from functools import lru_cache

import httpx
from django.conf import settings
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot
from genai_prices.types import _providers_from_raw

from .models import PriceData, PriceOverride
from .types import Cost, Usage

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
OVERRIDES_TTL_SECONDS = 30.0
PRICE_DATA_KEPT = 3
PRICE_DATA_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class PriceDataError(Exception):
    """The price data could not be fetched or is not valid genai-prices data."""


def snapshot_from_payload(payload) -> DataSnapshot:
    """genai-prices' own reading of its price data (as `UpdatePrices.fetch` does)."""
    if not isinstance(payload, list):
        raise PriceDataError("the price data is not a list of providers")
    try:
        providers = _providers_from_raw(payload)
    except (ValueError, TypeError) as error:  # pydantic's ValidationError is a ValueError
        raise PriceDataError(f"the price data is not valid: {error}") from error
    if not providers:
        raise PriceDataError("the price data has no providers")
    return DataSnapshot(providers, from_auto_update=True)


def fetch_price_data(url: str) -> PriceData:
    """Fetch the price data from `url`, check it with genai-prices and store it (keeping the
    latest PRICE_DATA_KEPT). Raises PriceDataError, storing nothing, if it cannot."""
    try:
        response = httpx.get(url, timeout=PRICE_DATA_TIMEOUT, follow_redirects=True)
        response.raise_for_status()
        payload = json.loads(response.content)
    except (httpx.HTTPError, ValueError) as error:
        raise PriceDataError(f"could not fetch {url}: {type(error).__name__}: {error}") from error
    snapshot = snapshot_from_payload(payload)
    row = PriceData.objects.create(url=url, providers=len(snapshot.providers), payload=payload)
    kept = PriceData.objects.values_list("pk", flat=True)[:PRICE_DATA_KEPT]
    PriceData.objects.exclude(pk__in=list(kept)).delete()
    return row


class _InstalledData:
    """Which stored price data this process prices with (None: the bundled data)."""

    def __init__(self):
        self.installed_id: int | None = None
        self.seen_id: int | None = None  # the newest row looked at, installed or refused

    def forget(self):
        """Back to the bundled data (tests, or the setting turned off)."""
        if self.installed_id is not None:
            set_custom_snapshot(None)
            _catalogue_price.cache_clear()
        self.installed_id = self.seen_id = None

    def _install(self, row_id: int, payload) -> None:
        self.seen_id = row_id
        try:
            snapshot = snapshot_from_payload(payload)
        except PriceDataError:
            logger.exception("stored price data %s cannot be read; the prices stay", row_id)
            return
        set_custom_snapshot(snapshot)
        _catalogue_price.cache_clear()
        self.installed_id = row_id
        logger.info("pricing with the price data fetched as row %s", row_id)

    def sync(self) -> None:
        if not settings.AI_PRICES_UPDATE_URL:
            self.forget()
            return
        newest = PriceData.objects.values_list("pk", flat=True).first()
        if newest is not None and newest != self.seen_id:
            self._install(newest, PriceData.objects.get(pk=newest).payload)

    async def async_sync(self) -> None:
        if not settings.AI_PRICES_UPDATE_URL:
            self.forget()
            return
        newest = await PriceData.objects.values_list("pk", flat=True).afirst()
        if newest is not None and newest != self.seen_id:
            row = await PriceData.objects.aget(pk=newest)
            # Reading a few hundred kB of price data takes a moment: not on the event loop.
            await asyncio.to_thread(self._install, newest, row.payload)


price_data = _InstalledData()


class _Overrides:
    """Price overrides kept in memory; reloaded at most every OVERRIDES_TTL_SECONDS and at once
    when an override changes in this process (signals in iridium.ai.apps). The same refresh
    looks for newer stored price data (`price_data`)."""

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
            await price_data.async_sync()
            self._loaded_at = time.monotonic()

    def refresh_if_stale_sync(self):
        if self.stale():
            self._by_model = {o.model: o for o in PriceOverride.objects.all()}
            price_data.sync()
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


def load_catalogue() -> None:
    """Load the catalogue of prices now (it takes a moment), not at the first call's price."""
    _catalogue_price(settings.AI_PROVIDER, "", Usage())


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
