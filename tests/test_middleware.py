"""Django's middleware on the event loop (iridium.web.middleware.OnTheLoop), through the ASGI
handler the server runs: the same behaviour as Django's own (sessions, CSRF, sign-in,
messages), with three thread hops a request instead of nineteen."""

import collections
import re

import httpx
import pytest
from asgiref import sync
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

from iridium.asgi import django_asgi_app
from iridium.web.account import DELETED
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)  # views run in threads of their own


@pytest.fixture
def hops(monkeypatch):
    """What each request ran in a thread (asgiref's sync_to_async), by name."""
    counted = collections.Counter()
    original = sync.SyncToAsync.__call__

    async def call(self, *args, **kwargs):
        counted[getattr(self.func, "__qualname__", type(self.func).__name__)] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", call)
    return counted


def browser(app=django_asgi_app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", follow_redirects=False
    )


def token_of(page: httpx.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


async def log_in(client: httpx.AsyncClient, user) -> None:
    page = await client.get("/accounts/login/")
    response = await client.post(
        "/accounts/login/",
        data={
            "username": user.username,
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": token_of(page),
        },
    )
    assert response.status_code == 302, response.text[:500]
    assert "sessionid" in response.cookies  # saved in its hop, and set on the response


async def test_a_request_takes_three_thread_hops_where_django_takes_nineteen(hops):
    async with browser() as client:
        await client.get("/healthz")
        hops.clear()
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert sum(hops.values()) == 3, hops  # the request's signals, the view, the response's end
    assert hops["healthz"] == 1

    hops.clear()
    async with browser(DjangoASGIHandler()) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert sum(hops.values()) >= 15, hops  # each process_request and process_response


async def test_signing_in_and_out_saves_the_session_and_reads_the_user_once(user, hops):
    async with browser() as client:
        assert (await client.get("/accounts/me/")).status_code == 302  # to the log-in page
        await log_in(client, user)
        hops.clear()
        page = await client.get("/accounts/me/")
        assert page.status_code == 200
        assert user.username in page.text
        assert sum(hops.values()) == 3, hops  # the user is read in the view's own hop
        # A response that changes no session saves none, and keeps the security headers.
        assert "sessionid" not in page.cookies
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in page.headers

        logout = await client.post(
            "/accounts/logout/", data={"csrfmiddlewaretoken": token_of(page)}
        )
        assert logout.status_code == 302
        assert (await client.get("/accounts/me/")).status_code == 302


async def test_an_asynchronous_view_reads_session_and_user_in_one_hop(user, hops):
    """Generate's POST is an asynchronous view: PostHog's middleware and `login_required`
    want the user; it is read once, in one hop, whatever asks first."""
    async with browser() as client:
        await log_in(client, user)
        page = await client.get("/generate/")
        hops.clear()
        response = await client.post(
            "/generate/new/code/", data={"csrfmiddlewaretoken": token_of(page)}
        )
    assert response.status_code == 400  # the form says what is missing; nothing started
    assert "This field is required" in response.text
    assert hops["get_user"] == 1, hops  # the session and the user, together
    # The rest: the request's signals, the form's step, Django logging a 4xx, the end.
    assert sum(hops.values()) == 5, hops


async def test_a_post_without_its_token_is_refused(user):
    async with browser() as client:
        await log_in(client, user)
        response = await client.post("/generate/new/code/", data={"prompt": "a parser"})
    assert response.status_code == 403


async def test_messages_are_stored_and_shown_on_the_next_page(user):
    async with browser() as client:
        await log_in(client, user)
        page = await client.get("/accounts/me/")
        response = await client.post(
            "/accounts/me/delete/",
            data={"password": DEFAULT_PASSWORD, "csrfmiddlewaretoken": token_of(page)},
        )
        assert response.status_code == 302
        home = await client.get(response.headers["location"])
        assert DELETED in home.text
        assert DELETED not in (await client.get("/")).text  # shown once
