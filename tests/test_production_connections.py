"""Answers started by an HTTP request (generate, a new ticket) do their later database work
outside the request, so no connection is left checked out when the request has ended: on the
production set-up a worker serves any number of them with a small pool, and without a pool no
PostgreSQL connections pile up."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from codegen.models import Creation
from support.models import Ticket, TicketMessage
from tests.helpers.production import (
    Browser,
    ai_base_url,
    production_environment,
    require_production_services,
    running,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

POOL_SIZE = 3
REQUESTS = 3 * POOL_SIZE  # each would keep a connection if the answers leaked them

# Answers that go on for a while after the request that started them has ended.
SLOW = "[[demo:slow=0.02]] [[demo:words=20]]"
CODE = {"prompt": f"A function that adds two numbers {SLOW}", "language": "python",
        "framework": "", "complexity": "simple"}  # fmt: skip
TICKET = {"title": "Cannot log in", "description": f"It says my password is wrong {SLOW}",
          "priority": "normal", "category": "account"}  # fmt: skip


def worker_connections(application_name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def wait_until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def production_worker(request, django_db_setup, demo_provider_server):
    """A worker with a pool of POOL_SIZE connections, or none; each is shared by the tests of
    its kind, so that what it holds at the end of one is also what it held on to from the
    others."""
    require_production_services()
    pooled = request.param
    application_name = f"iridium-test-connections-{'pool' if pooled else 'no-pool'}"
    extra = {"PGAPPNAME": application_name}
    extra.update({"DB_POOL_MAX_SIZE": POOL_SIZE} if pooled else {"DB_POOL": "false"})
    environment = production_environment(ai_base_url=ai_base_url(demo_provider_server), **extra)
    with running(environment) as [server]:
        server.application_name = application_name
        yield server


FEATURES = {
    "generate": ("/generate/", "/generate/new/code/", CODE),
    "support": ("/support/", "/support/tickets/new/", TICKET),
}


def answered(feature: str, user) -> int:
    if feature == "generate":
        return Creation.objects.filter(user=user, status="complete").count()
    return TicketMessage.objects.filter(
        ticket__user=user, kind=TicketMessage.Kind.ASSISTANT, status="complete"
    ).count()


@pytest.mark.parametrize("production_worker", [True, False], ids=["pool", "no-pool"], indirect=True)
@pytest.mark.parametrize("feature", FEATURES)
def test_answers_started_over_http_leave_no_connection_behind(production_worker, feature, user):
    page, action, form = FEATURES[feature]
    browser = Browser(production_worker.url, session_cookie(user))
    try:
        for index in range(REQUESTS):
            # Distinct requests, so that none is answered from the cache.
            data = {key: f"{index} {value}" if key in ("prompt", "title") else value
                    for key, value in form.items()}  # fmt: skip
            response = browser.post_form(page, action, data)
            assert response.status_code == 302, response.text[:500]
            wait_until(lambda index=index: answered(feature, user) == index + 1)
        health = browser.client.get("/healthz", timeout=5)
        assert health.status_code == 200, health.text
        # The worker holds what its pool allows (or, without a pool, what its long-lived
        # threads keep), however many answers it has served.
        assert worker_connections(production_worker.application_name) <= POOL_SIZE
    finally:
        browser.close()
    if feature == "support":
        assert Ticket.objects.filter(user=user).count() == REQUESTS
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.parametrize("production_worker", [True], ids=["pool"], indirect=True)
def test_requests_waiting_for_their_answers_leave_the_answers_connections(
    production_worker, make_user
):
    """Found by the soak: a generate request waits until its answer has started, and held its
    connection meanwhile; as many at once as the pool has connections left none for the answers,
    which waited out the pool's timeout and failed."""
    users = [make_user(f"many{index}") for index in range(2 * POOL_SIZE)]
    page, action, form = FEATURES["generate"]

    def generate(user):
        browser = Browser(production_worker.url, session_cookie(user))
        try:
            return browser.post_form(page, action, {**form, "prompt": f"{user} {form['prompt']}"})
        finally:
            browser.close()

    with ThreadPoolExecutor(len(users)) as pool:
        responses = list(pool.map(generate, users))
    assert [response.status_code for response in responses] == [302] * len(users)
    wait_until(lambda: Creation.objects.exclude(status="streaming").count() == len(users))
    assert list(Creation.objects.values_list("status", flat=True)) == ["complete"] * len(users)
