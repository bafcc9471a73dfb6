"""Pseudonymous distinct ids for PostHog: stable per user, not reversible without the secret."""

import hashlib
import hmac

from django.conf import settings


def pseudonym(user_id: int) -> str:
    secret = settings.ANALYTICS_PSEUDONYM_SECRET or f"iridium-pseudonym:{settings.SECRET_KEY}"
    digest = hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()
    return f"p_{digest[:32]}"
