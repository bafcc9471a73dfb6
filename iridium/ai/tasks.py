"""The AI service's periodic work as django-tasks tasks, run by `manage.py worker` on the
schedule of settings.PERIODIC_JOBS (iridium.jobs)."""

import logging

from django.conf import settings
from django_tasks import task

from . import pricing, retention

logger = logging.getLogger(__name__)


@task()
def refresh_prices() -> str:
    """Fetch genai-prices' price data from AI_PRICES_UPDATE_URL and store it for every process
    (iridium.ai.pricing). Scheduled only when the URL is set; a no-op without it. Data that
    cannot be fetched or read is not stored (the prices in use stay) and the run fails."""
    url = settings.AI_PRICES_UPDATE_URL
    if not url:
        return "off: AI_PRICES_UPDATE_URL is not set"
    try:
        row = pricing.fetch_price_data(url)
    except pricing.PriceDataError as error:
        logger.warning("price data not updated, the prices in use stay: %s", error)
        raise
    return f"stored price data {row.pk}: {row.providers} providers"


@task()
def purge_generations() -> str:
    """Retention of the generation record (iridium.ai.retention): content after
    ANALYTICS_CONTENT_RETENTION_DAYS, rows after ANALYTICS_RETENTION_DAYS, in batches."""
    return str(
        retention.purge(
            older_than=settings.ANALYTICS_RETENTION_DAYS,
            content_older_than=settings.ANALYTICS_CONTENT_RETENTION_DAYS,
        )
    )
