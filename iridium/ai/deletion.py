"""What a user's deletion must also remove outside the database's own cascades.

The database cascades take their conversations, tickets, creations, generation rows and spans.
Here: their cached answers, and their person in PostHog. PostHog deletes persons only through
its private API, with a personal API key and the project's id (POSTHOG_PERSONAL_API_KEY,
POSTHOG_PROJECT_ID); without them the deletion is logged for an admin to do in PostHog.
"""

import logging
import threading

import httpx
from django.conf import settings

from .cache import forget_user
from .pseudonyms import pseudonym

logger = logging.getLogger(__name__)


def user_deleted(sender, instance, **kwargs):
    try:
        forget_user(instance.pk)
    except Exception:
        logger.exception("could not delete the cached answers of user %s", instance.pk)
    if settings.POSTHOG_API_KEY:
        # Both ids the user may be known by: their id, and their pseudonym.
        distinct_ids = [str(instance.pk), pseudonym(instance.pk)]
        threading.Thread(target=_delete_person, args=(distinct_ids,), daemon=True).start()


def _delete_person(distinct_ids: list[str]) -> None:
    if not (settings.POSTHOG_PERSONAL_API_KEY and settings.POSTHOG_PROJECT_ID):
        logger.warning(
            "A deleted user's PostHog person was not deleted: set POSTHOG_PERSONAL_API_KEY and "
            "POSTHOG_PROJECT_ID, or delete distinct ids %s in PostHog.",
            distinct_ids,
        )
        return
    url = (
        f"{settings.POSTHOG_HOST.rstrip('/')}/api/projects/{settings.POSTHOG_PROJECT_ID}"
        "/persons/bulk_delete/"
    )
    try:
        response = httpx.post(
            url,
            json={"distinct_ids": distinct_ids, "delete_events": True},
            headers={"Authorization": f"Bearer {settings.POSTHOG_PERSONAL_API_KEY}"},
            timeout=settings.POSTHOG_TIMEOUT,
        )
        response.raise_for_status()
    except httpx.HTTPError as error:
        logger.warning("PostHog did not delete persons %s: %s", distinct_ids, error)
