"""Shared fixtures. In CI (CI or IRIDIUM_REQUIRE_SERVICES set) PostgreSQL and Redis must be
configured and reachable, or the run stops at once: those tests must never pass by skipping."""

import os
import time

import pytest
from channels.layers import channel_layers
from django.conf import settings
from django.core.cache import cache

from iridium.accounts.models import Organization, Plan
from iridium.accounts.services import ensure_default_plans
from tests import factories

pytest_plugins = [
    "tests.live",
    "tests.fixtures_ai",
    "tests.helpers.redis_server",
    "tests.helpers.production",
]


def services_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("IRIDIUM_REQUIRE_SERVICES"))


def require(available, what: str) -> None:
    """Skip a test that needs `what` when it is missing, but only outside CI: in CI (where
    PostgreSQL, Redis and redis-server are always there) a missing service fails the test."""
    if available:
        return
    if services_required():
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what} (CI provides it)")


def embedded_pass() -> bool:
    """`make test-embedded`: tests of the apps again on the embedded defaults that `make run`
    serves (SQLite, local-memory cache, in-memory channel layer), where the databases differ
    (a constraint's error, the console's SQL)."""
    return os.environ.get("IRIDIUM_TEST_SETUP") == "embedded"


def pytest_sessionstart(session):
    if embedded_pass():
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
            pytest.exit("The embedded pass runs on SQLite: unset DATABASE_URL", returncode=3)
        if settings.REDIS_URL:
            pytest.exit("The embedded pass runs without Redis: unset REDIS_URL", returncode=3)
        return
    if not services_required():
        return
    problems = []
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL")
    else:
        import psycopg

        try:
            psycopg.connect(
                host=database["HOST"] or "127.0.0.1",
                port=database["PORT"] or 5432,
                user=database["USER"],
                password=database["PASSWORD"],
                dbname="postgres",
                connect_timeout=5,
            ).close()
        except psycopg.Error as error:
            problems.append(f"PostgreSQL is unreachable: {error}")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL must be set")
    else:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5).ping()
        except redis.RedisError as error:
            problems.append(f"Redis is unreachable: {error}")
    if problems:
        pytest.exit("Services the tests need are missing: " + "; ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _clean_cache():
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer object: channels-redis's layer remembers the event
    loop receiving on it, and a socket of an earlier test's (closed) loop must not count."""
    channel_layers.backends.clear()
    yield


@pytest.fixture
def plans(db):
    # Transactional tests flush the tables, data-migration rows included: put the plans back.
    ensure_default_plans()
    return {plan.slug: plan for plan in Plan.objects.all()}


@pytest.fixture
def make_user(plans):
    """tests.factories.user, once the plans are there; `plan` is a slug."""

    def make(username="someone", *, plan="free", **fields):
        return factories.user(username, plan=plans[plan], **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user("ursula")


@pytest.fixture
def staff(make_user):
    return make_user("stella", is_staff=True, is_superuser=True)


@pytest.fixture
def organization(plans):
    return Organization.objects.create(name="Globex", slug="globex", plan=plans["enterprise"])


@pytest.fixture(scope="session", autouse=True)
def _end_stray_connections(django_db_setup, django_db_blocker):
    """Under ASGI each request's sync code may run in a short-lived thread; a connection such a
    thread opened can outlive the thread for a moment, and the pool keeps connections of its own.
    Close the pool and end the others (and wait until they are gone: ending one is a signal, not
    a wait) before the test database goes."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        connection.close()
        connection.close_pool()  # else it opens new ones to keep its minimum size
        with connection._nodb_cursor() as cursor:
            for _ in range(100):
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [connection.settings_dict["NAME"]],
                )
                if not cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
