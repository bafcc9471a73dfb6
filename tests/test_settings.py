"""The settings module read in a fresh interpreter under different environments."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
def named(value):  # classes (a connection class) by their dotted name
    return f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else str(value)
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_host": settings.DATABASES["default"].get("HOST"),
    "db_pool": settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION"),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_hosts": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts"),
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "posthog_host": settings.POSTHOG_HOST,
    "openai_base_url": settings.OPENAI_BASE_URL,
}, default=named))
"""

VARIABLES = [
    "DATABASE_URL",
    "DB_POOL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "POSTHOG_API_KEY",
    "POSTHOG_HOST",
]


def run_settings(**variables):
    environment = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    environment.update(
        DJANGO_SETTINGS_MODULE="iridium.settings", IRIDIUM_ENV_FILE="/nonexistent", **variables
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_with(**variables):
    result = run_settings(**variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_defaults_with_nothing_set():
    loaded = settings_with()
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"].endswith("var/iridium.sqlite3")
    assert loaded["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert loaded["layer"] == "iridium.infra.layers.InMemoryChannelLayer"
    assert loaded["debug"] is True
    assert loaded["allowed_hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert loaded["posthog_host"] == "https://us.i.posthog.com"


def test_database_url_selects_postgresql():
    loaded = settings_with(DATABASE_URL="postgres://iri:secret@db.internal:5433/iridium")
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["db_name"] == "iridium"
    assert loaded["db_host"] == "db.internal"
    assert loaded["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    # Connections closed after each request go back to a pool in the process.
    assert loaded["db_pool"]["max_size"] == 20


def test_the_postgresql_pool_can_be_turned_off():
    loaded = settings_with(
        DATABASE_URL="postgres://iri:secret@db.internal/iridium", DB_POOL="false"
    )
    assert loaded["db_pool"] is None


def test_redis_url_selects_redis_cache_and_channel_layer():
    loaded = settings_with(REDIS_URL="redis://cache.internal:6379/2")
    assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["cache_location"] == "redis://cache.internal:6379/2"
    assert loaded["layer"] == "channels_redis.core.RedisChannelLayer"
    [host] = loaded["layer_hosts"]
    assert (host["host"], host["port"], host["db"]) == ("cache.internal", 6379, 2)
    # Through the connection class that lets cancellations through (test_redis_cancellation).
    assert host["connection_class"] == "iridium.infra.redis.Connection"
    # Longer than channels-redis's 5 s blocking pop (test_stream_relay shows why).
    assert host["socket_timeout"] > 5
    assert loaded["engine"] == "django.db.backends.sqlite3"


def test_hosts_origins_and_service_addresses_come_from_the_environment():
    loaded = settings_with(
        ALLOWED_HOSTS="iridium.example.com,www.iridium.example.com",
        CSRF_TRUSTED_ORIGINS="https://iridium.example.com",
        POSTHOG_HOST="https://eu.i.posthog.com",
        OPENAI_BASE_URL="http://127.0.0.1:11434/v1",
    )
    assert loaded["allowed_hosts"] == ["iridium.example.com", "www.iridium.example.com"]
    assert loaded["csrf_trusted_origins"] == ["https://iridium.example.com"]
    assert loaded["posthog_host"] == "https://eu.i.posthog.com"
    assert loaded["openai_base_url"] == "http://127.0.0.1:11434/v1"


def test_production_without_secret_key_stops_with_a_clear_error():
    result = run_settings(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr


@pytest.mark.parametrize("debug", ["false", "0", "off"])
def test_production_with_secret_key_starts(debug):
    loaded = settings_with(DEBUG=debug, SECRET_KEY="x" * 50)
    assert loaded["debug"] is False
