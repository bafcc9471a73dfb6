"""System checks for settings that production needs (`manage.py check`, `check --deploy`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

W_POSTHOG_KEY = "iridium.W001"
W_POSTHOG_HOST = "iridium.W002"
W_REDIS_UNREACHABLE = "iridium.W003"
W_DEBUG_REAL_DATABASE = "iridium.W004"


@register(Tags.compatibility)
def check_posthog(app_configs=None, **kwargs):
    problems = []
    # In development analytics are off on purpose; in production a missing key loses them.
    if not settings.POSTHOG_API_KEY and not settings.DEBUG:
        problems.append(
            Warning(
                "PostHog analytics are off: POSTHOG_API_KEY is not set.",
                hint="Set POSTHOG_API_KEY to your PostHog project API key (phc_...) to send "
                "$ai_generation events. Everything else works without it.",
                id=W_POSTHOG_KEY,
            )
        )
    host = urlsplit(settings.POSTHOG_HOST)
    if host.scheme not in ("http", "https") or not host.netloc:
        problems.append(
            Warning(
                f"POSTHOG_HOST is not a URL: {settings.POSTHOG_HOST!r}.",
                hint="Set POSTHOG_HOST to https://us.i.posthog.com, https://eu.i.posthog.com "
                "or the https:// address of your self-hosted PostHog.",
                id=W_POSTHOG_HOST,
            )
        )
    return problems


@register(Tags.caches)
def check_redis(app_configs=None, **kwargs):
    if not settings.REDIS_URL:
        return []
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=settings.REDIS_TIMEOUT, socket_timeout=1
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return [
            Warning(
                f"Redis is configured but unreachable at {_without_password(settings.REDIS_URL)}: "
                f"{error}",
                hint="Start Redis or correct REDIS_URL (redis://host:6379/0). Until then the cache "
                "is bypassed and websocket streams cannot cross workers.",
                id=W_REDIS_UNREACHABLE,
            )
        ]
    finally:
        client.close()
    return []


@register(Tags.security, deploy=False)
def check_debug_with_real_database(app_configs=None, **kwargs):
    engine = settings.DATABASES["default"]["ENGINE"]
    if settings.DEBUG and not engine.endswith("sqlite3"):
        return [
            Warning(
                "DEBUG is on while a real database is configured (DATABASE_URL).",
                hint="Set DEBUG=false in production; DEBUG shows settings and code in error pages. "
                "Also set SECRET_KEY and ALLOWED_HOSTS.",
                id=W_DEBUG_REAL_DATABASE,
            )
        ]
    return []


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
