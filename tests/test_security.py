"""Security at the edges: headers and Content-Security-Policy, the websocket origin check,
unknown socket paths, error pages, log-in throttling, sign-up limits and email verification,
closed tickets, the audit log of staff reads, and what the access log keeps."""

import json
import re
import subprocess
import sys

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.test import Client
from django.urls import reverse

from iridium.accounts import audit
from iridium.accounts.forms import SignUpForm
from iridium.accounts.models import AuditEntry, User
from iridium.ai.models import BudgetWarning, Feedback
from iridium.asgi import application
from iridium.web.sockets import CLOSE_NOT_FOUND
from support.models import Ticket, TicketMessage
from tests import factories
from tests.helpers.production import ROOT, Server, production_environment
from tests.helpers.sockets import frames_until, open_socket

STRONG_PASSWORD = "velvet-Harbor-42"


# --- Headers and the Content-Security-Policy --------------------------------------------------


def pages_of(user):
    conversation = factories.conversation(user)
    ticket = factories.ticket(user)
    return [
        "/",
        reverse("chat:index"),
        reverse("chat:conversation", args=[conversation.pk]),
        reverse("support:index"),
        reverse("support:ticket", args=[ticket.pk]),
        reverse("support:articles"),
        reverse("codegen:index"),
        reverse("password_change"),
    ]


def test_every_page_has_a_strict_policy_and_nothing_inline(client, user):
    client.force_login(user)
    for url in pages_of(user):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response.headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", url
        assert directives["style-src"] == "'self'", url
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
        assert "unsafe" not in policy
        html = response.content.decode()
        # What the policy would block: scripts without src, event handlers, style attributes,
        # javascript: links.
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"\sstyle=", html), url
        assert "javascript:" not in html, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def run_deploy_check(**variables):
    environment = {
        "PATH": "/usr/bin:/bin",
        "IRIDIUM_ENV_FILE": "/nonexistent",
        "DEBUG": "false",
        "SECRET_KEY": "k" * 40 + "-production-secret-key-of-some-length",
        "ALLOWED_HOSTS": "iridium.example.com",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


# The production settings docs/deploying.md names (its example's values where they are given).
DOCUMENTED = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 40 + "-production-secret-key-of-some-length",
    "ALLOWED_HOSTS": "iridium.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://iridium.example.com",
    "BEHIND_TLS_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "POSTHOG_API_KEY": "phc_test",
}


def deploy_warnings(**variables) -> set[str]:
    """Every warning or error id `check --deploy` reports, Django's and Iridium's."""
    result = run_deploy_check(**variables)
    output = result.stdout + result.stderr
    return set(re.findall(r"\b(?:security|iridium)\.[WE]\d+", output))


def test_the_documented_settings_are_the_ones_the_deploy_check_is_run_with():
    doc = (ROOT / "docs" / "deploying.md").read_text()
    example = doc[doc.index("export DEBUG=") : doc.index("manage.py migrate")]
    for name in DOCUMENTED:
        assert f"{name}=" in example, name
        assert f"`{name}" in doc, name  # and the security section names it
    for name in ("DEBUG", "BEHIND_TLS_PROXY", "SECURE_SSL_REDIRECT"):
        assert f"{name}={DOCUMENTED[name]}" in example, name


def test_check_deploy_reports_what_the_docs_say():
    # With the documented settings, only the two that are a site's own choice (subdomains,
    # preload list) remain.
    assert deploy_warnings(**DOCUMENTED) == {"security.W005", "security.W021"}
    # W008 without the redirect, iridium.W001 without a PostHog key (the docs say so).
    without = {k: v for k, v in DOCUMENTED.items()
               if k not in ("SECURE_SSL_REDIRECT", "POSTHOG_API_KEY")}  # fmt: skip
    assert deploy_warnings(**without) == {
        "security.W005", "security.W021", "security.W008", "iridium.W001"
    }  # fmt: skip
    # No HSTS over plain HTTP.
    plain = {k: v for k, v in DOCUMENTED.items() if k != "BEHIND_TLS_PROXY"}
    assert "security.W004" in deploy_warnings(**plain)


def test_hsts_is_sent_over_tls_behind_the_proxy(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/", headers={"x-forwarded-proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers  # never over plain HTTP


# --- Websockets: origin and unknown paths ------------------------------------------------------


async def connect(path, origin, host=b"127.0.0.1:8000", user=None, scheme="ws"):
    headers = [(b"origin", origin), (b"host", host)]
    if user is not None:
        from tests.helpers.sockets import session_cookie

        headers.append((b"cookie", (await sync_to_async(session_cookie)(user)).encode()))
    communicator = WebsocketCommunicator(application, path, headers)
    communicator.scope["scheme"] = scheme
    connected, code = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected, code


@pytest.mark.parametrize(
    ("origin", "scheme", "accepted"),
    [
        (b"http://127.0.0.1:8000", "ws", True),
        (b"http://127.0.0.1:9999", "ws", False),  # another port of the same host
        (b"https://127.0.0.1:8000", "ws", False),  # another scheme
        (b"https://127.0.0.1", "ws", False),
        (b"http://evil.example", "ws", False),
        (b"null", "ws", False),
        (b"https://127.0.0.1:8000", "wss", True),  # the socket itself over TLS
        (b"http://127.0.0.1:8000", "wss", False),
    ],
)
async def test_a_socket_opens_only_from_a_page_of_the_same_origin(
    ai_settings, user, origin, scheme, accepted
):
    conversation = await sync_to_async(factories.conversation)(user)
    connected, _ = await connect(f"/ws/chat/{conversation.pk}/", origin, user=user, scheme=scheme)
    assert connected is accepted


async def test_no_origin_or_a_host_not_allowed_is_refused(ai_settings, user):
    conversation = await sync_to_async(factories.conversation)(user)
    path = f"/ws/chat/{conversation.pk}/"
    assert not (await connect(path, b"http://evil.example", host=b"evil.example", user=user))[0]
    communicator = WebsocketCommunicator(application, path, [(b"host", b"127.0.0.1:8000")])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_a_trusted_origin_is_accepted(ai_settings, user):
    ai_settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    conversation = await sync_to_async(factories.conversation)(user)
    connected, _ = await connect(
        f"/ws/chat/{conversation.pk}/", b"https://app.example.com", user=user
    )
    assert connected


async def test_an_unknown_socket_path_is_closed_as_not_found_not_an_error(ai_settings, caplog):
    connected, code = await connect("/ws/nothing/here/", b"http://127.0.0.1:8000")
    assert (connected, code) == (False, CLOSE_NOT_FOUND)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# --- Error pages ---------------------------------------------------------------------------------


def test_people_without_access_to_admin_get_a_403_page(client, user):
    client.force_login(user)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    page = response.content.decode()
    assert "You do not have access to this page" in page
    assert 'class="site-header"' in page  # Iridium's own layout, not admin's log-in form
    assert 'name="password"' not in page
    client.logout()
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_a_missing_page_is_iridiums_404(client, user, settings):
    settings.DEBUG = False
    client.force_login(user)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert 'class="site-header"' in response.content.decode()


def test_an_unexpected_error_is_iridiums_500(user, settings):
    settings.DEBUG = False
    from django.views.defaults import server_error

    response = server_error(Client().get("/").wsgi_request)
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


# --- Log-in throttling, sign-up limits, email verification --------------------------------------


def test_wrong_passwords_lock_the_username_from_that_address(client, make_user):
    make_user("ursula", password=STRONG_PASSWORD)
    url = reverse("login")
    for _ in range(4):
        response = client.post(url, {"username": "ursula", "password": "wrong"})
        assert response.status_code == 200
    # The fifth wrong password locks the username out from this address...
    assert client.post(url, {"username": "ursula", "password": "wrong"}).status_code == 429
    # ...and the right password no longer helps from this address...
    response = client.post(url, {"username": "ursula", "password": STRONG_PASSWORD})
    assert response.status_code == 429
    assert "Too many log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The person can still log in from elsewhere.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    response = elsewhere.post(url, {"username": "ursula", "password": STRONG_PASSWORD})
    assert response.status_code == 302


def test_a_right_password_before_the_limit_resets_the_count(client, make_user):
    make_user("ursula", password=STRONG_PASSWORD)
    url = reverse("login")
    for _ in range(4):
        client.post(url, {"username": "ursula", "password": "wrong"})
    assert client.post(url, {"username": "ursula", "password": STRONG_PASSWORD}).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        assert client.post(url, {"username": "ursula", "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": "ursula", "password": STRONG_PASSWORD}).status_code == 302


def sign_up(client, username, **extra):
    return client.post(
        reverse("signup"),
        {"username": username, "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD, **extra},
    )


def test_sign_ups_are_limited_per_address(plans):
    crowd = Client(REMOTE_ADDR="198.51.100.7")
    for number in range(5):
        assert sign_up(crowd, f"person{number}").status_code == 302
        crowd.post(reverse("logout"))
    # Mistakes cost nothing toward the limit; created accounts do.
    response = sign_up(crowd, "person5")
    assert response.status_code == 429
    assert "Too many accounts were created from your network" in response.content.decode()
    assert not User.objects.filter(username="person5").exists()
    assert sign_up(Client(REMOTE_ADDR="198.51.100.8"), "person5").status_code == 302


def test_with_verification_an_account_works_only_after_its_link(client, settings, plans):
    settings.ACCOUNTS_VERIFY_EMAIL = True
    response = sign_up(client, "newbie")
    assert response.status_code == 200
    assert "email" in response.context["form"].errors  # the address is required
    response = sign_up(client, "newbie", email="newbie@example.com")
    assert response.status_code == 200 and "Check your email" in response.content.decode()
    newbie = User.objects.get(username="newbie")
    assert not newbie.is_active and "_auth_user_id" not in client.session
    not_yet = client.post(reverse("login"), {"username": "newbie", "password": STRONG_PASSWORD})
    assert not_yet.status_code == 200 and "_auth_user_id" not in client.session

    (message,) = mail.outbox
    assert message.to == ["newbie@example.com"]
    link = re.search(r"http://testserver(/accounts/verify/\S+/)", message.body).group(1)
    response = client.get(link)
    assert response.status_code == 302
    newbie.refresh_from_db()
    assert newbie.is_active and client.session["_auth_user_id"] == str(newbie.pk)
    client.post(reverse("logout"))
    assert client.get(link).status_code == 400  # once only
    assert client.get(link.replace("/verify/", "/verify/x")).status_code == 400

    # One address, one account: another sign-up with it (in any case) is refused.
    response = sign_up(Client(REMOTE_ADDR="198.51.100.9"), "again", email="NewBie@example.com")
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [SignUpForm.TAKEN]
    assert not User.objects.filter(username="again").exists() and len(mail.outbox) == 1


# --- A closed ticket ------------------------------------------------------------------------------


def finished_ticket(owner, status):
    ticket = factories.ticket(owner)
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.status = status
    return ticket


@pytest.mark.parametrize("status", [Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
async def test_a_finished_ticket_takes_no_message_until_its_owner_reopens_it(
    ai_settings, user, status
):
    ticket = await sync_to_async(finished_ticket)(user, status)
    before = await TicketMessage.objects.filter(ticket=ticket).acount()
    socket, connected, _ = await open_socket(user, "ticket", ticket.pk)
    assert connected
    await frames_until(socket, "ready")
    await socket.send_json_to({"type": "send", "content": "Still broken", "client_id": "c1"})
    (refused,) = await frames_until(socket, "error")
    assert refused["code"] == "ticket_closed"
    assert refused["message"] == f"This ticket is {status}. Reopen it to add a message."
    assert refused["text"] == "Still broken"  # what they typed comes back
    assert await socket.receive_nothing(timeout=0.5)  # and no assistant answers
    assert await TicketMessage.objects.filter(ticket=ticket).acount() == before
    await ticket.arefresh_from_db()
    assert ticket.status == status

    # Reopening is explicit, and the thread says so (for staff to see).
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    response = await sync_to_async(browser.post)(reverse("support:reopen", args=[ticket.pk]))
    assert response.status_code == 302
    (note,) = await frames_until(socket, "user_message")
    assert "ursula reopened the ticket." in note["html"]
    await ticket.arefresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    await socket.send_json_to({"type": "send", "content": "Still broken", "client_id": "c2"})
    frames = await frames_until(socket, "answer_finished", timeout=15)
    assert any(f["type"] == "user_message" for f in frames)
    await socket.disconnect()


def test_only_the_owner_reopens_and_the_page_offers_it(client, user, make_user):
    ticket = finished_ticket(user, Ticket.Status.CLOSED)
    client.force_login(user)
    page = client.get(reverse("support:ticket", args=[ticket.pk])).content.decode()
    assert "This ticket is closed." in page and "Reopen ticket" in page
    assert "composer-input" not in page
    client.force_login(make_user("sid"))
    assert client.post(reverse("support:reopen", args=[ticket.pk])).status_code == 404
    agent = factories.support_agent("dana")
    client.force_login(agent)
    page = client.get(reverse("support:ticket", args=[ticket.pk])).content.decode()
    assert "Reopen ticket" not in page and "Reply to the customer" in page
    assert client.post(reverse("support:reopen", args=[ticket.pk])).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CLOSED


# --- The audit log ------------------------------------------------------------------------------


def test_an_agent_reading_a_customers_ticket_is_audited(client, user, staff):
    ticket = factories.ticket(user)
    client.force_login(user)
    client.get(reverse("support:ticket", args=[ticket.pk]))
    assert not AuditEntry.objects.exists()  # their own ticket
    agent = factories.support_agent("dana")
    client.force_login(agent)
    client.get(reverse("support:ticket", args=[ticket.pk]))
    (entry,) = AuditEntry.objects.all()
    assert (entry.actor, entry.action, entry.target, entry.subject) == (
        agent,
        "read ticket",
        f"support-ticket-{ticket.pk}",
        user,
    )
    # Admins read the log; nobody writes or changes it by hand.
    client.force_login(staff)
    changelist = client.get(reverse("admin:accounts_auditentry_changelist"))
    assert changelist.status_code == 200 and f"support-ticket-{ticket.pk}" in changelist.text
    assert client.get(reverse("admin:accounts_auditentry_add")).status_code == 403
    client.force_login(agent)
    assert client.get(reverse("admin:accounts_auditentry_changelist")).status_code == 403


# --- The access log -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_access_log_keeps_paths_without_their_query(tmp_path, plans):
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = Server(
            production_environment(ai_base_url="http://127.0.0.1:9/v1"),
            log_level="info",
            output=output,
        )
        try:
            httpx.get(f"{server.url}/support/articles/?q=my-secret-search-term", timeout=10)
            httpx.get(f"{server.url}/healthz?probe=1", timeout=10)
        finally:
            server.stop()
    text = log.read_text()
    assert '"GET /support/articles/ HTTP/1.1" 302' in text
    assert '"GET /healthz HTTP/1.1"' in text
    assert "my-secret-search-term" not in text and "probe=1" not in text


# --- What Iridium holds on a person ------------------------------------------------------------


def test_a_person_downloads_everything_held_on_them_and_nothing_of_others(client, user, make_user):
    other = make_user("olga")
    mine = factories.conversation(user, messages=[("user", "my own words"), ("assistant", "hi")])
    factories.conversation(other, messages=[("user", "olga's secret")])
    factories.ticket(user, title="My printer")
    factories.creation(user, prompt="A parser of mine")
    factories.create_generation(user=user, trace_id=mine.ai_session_id, input=[{"content": "mine"}])
    factories.create_generation(user=other, trace_id="conversation-olga")
    factories.span(user=user, trace_id=mine.ai_session_id, input_state={"query": "my printer"},
                   output_state={"results": []})  # fmt: skip
    factories.span(user=other, trace_id="conversation-olga", input_state={"query": "olga"})
    BudgetWarning.objects.create(user=user, period="2026-12", percent=80, budget_usd=10,
                                 spent_usd=8)  # fmt: skip
    BudgetWarning.objects.create(user=other, period="2026-12", percent=100, budget_usd=5,
                                 spent_usd=5)  # fmt: skip
    admin = make_user("root", is_staff=True, is_superuser=True)
    audit.record(admin, audit.READ_TRACE_CONTENT, mine.ai_session_id, subject=user)
    audit.record(admin, audit.READ_TRACE_CONTENT, "conversation-olga", subject=other)
    Feedback.objects.create(user=user, trace_id="t-mine", feature="chat", rating="down",
                            comment="too long")  # fmt: skip
    Feedback.objects.create(user=other, trace_id="t-olga", feature="chat", rating="up",
                            comment="olga's comment")  # fmt: skip
    client.force_login(user)

    page = client.get(reverse("account"))
    assert page.status_code == 200
    assert "1 conversation, 1 ticket and 1 creation" in page.text
    response = client.get(reverse("account_data"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="iridium-ursula-')
    data = json.loads(response.content)
    assert data["account"]["username"] == "ursula"
    [conversation] = data["conversations"]
    assert [m["content"] for m in conversation["messages"]] == ["my own words", "hi"]
    assert [t["title"] for t in data["tickets"]] == ["My printer"]
    assert data["tickets"][0]["messages"][0]["content"] == factories.TICKET["description"]
    assert [c["prompt"] for c in data["creations"]] == ["A parser of mine"]
    assert [call["trace_id"] for call in data["ai_calls"]] == [mine.ai_session_id]
    assert [(f["trace_id"], f["rating"], f["comment"]) for f in data["feedback"]] == [
        ("t-mine", "down", "too long")
    ]
    assert [(step["trace_id"], step["input"], step["output"]) for step in data["ai_steps"]] == [
        (mine.ai_session_id, {"query": "my printer"}, {"results": []})
    ]
    assert [(w["period"], w["percent"]) for w in data["budget_warnings"]] == [("2026-12", 80)]
    assert [(e["action"], e["target"]) for e in data["audit_log"]] == [
        ("read trace content", mine.ai_session_id)
    ]
    assert "olga" not in response.content.decode()
    assert "root" not in response.content.decode()  # who read it is staff's to know
    # The download itself is in the audit log, and in the next download.
    entry = AuditEntry.objects.filter(actor=user).get()
    assert (entry.action, entry.subject) == ("export personal data", user)
    again = json.loads(client.get(reverse("account_data")).content)
    assert [e["action"] for e in again["audit_log"]][-1] == "export personal data"
    client.logout()
    assert client.get(reverse("account_data")).status_code == 302  # log in first


def test_a_person_deletes_their_account_with_their_password(client, make_user):
    person = make_user("ursula", password=STRONG_PASSWORD)
    factories.conversation(person, messages=[("user", "bye")])
    client.force_login(person)
    response = client.post(reverse("account_delete"), {"password": "not it"})
    assert response.status_code == 400 and "That is not your password." in response.text
    assert User.objects.filter(pk=person.pk).exists()
    response = client.post(reverse("account_delete"), {"password": STRONG_PASSWORD}, follow=True)
    assert "everything Iridium held on you have been deleted" in response.text
    assert not User.objects.filter(pk=person.pk).exists()
    assert "_auth_user_id" not in client.session


def test_a_username_too_long_to_be_one_is_a_form_error_not_an_attempt(client, plans):
    """It would not fit the log-in throttling's records (255 characters)."""
    for url in (reverse("login"), reverse("admin:login")):
        response = client.post(url, {"username": "x" * 5000, "password": "0"})
        assert response.status_code == 200, url
        assert "Ensure this value has at most 150 characters" in response.content.decode()


def test_no_template_holds_what_the_policy_would_block():
    """Every page, not only those read above: no template of the project has an inline script,
    an event handler, a style attribute or a javascript: link (a page the tests do not open
    would otherwise break silently under the policy)."""
    templates = [
        path
        for path in ROOT.rglob("templates/**/*.html")
        if not {".venv", ".tools", "node_modules"} & set(path.parts)
    ]
    assert len(templates) > 40
    for path in templates:
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"\sstyle=", html), path
        assert "javascript:" not in html, path
