"""Who may open which console page, and who may read a trace's prompts and answers: the
permission matrix over every console URL, for each role."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from iridium.analytics import access
from tests import factories

PROMPT = "PROMPT-MARKER alice asks about her invoice"
ANSWER = "ANSWER-MARKER the refund is on its way"
TOOL_OUTPUT = "TOOL-MARKER article body"
# Errors whose text quotes the person, as providers and tools write them.
PROVIDER_ERROR = f"BadRequestError: Error code: 400 - refused: {PROMPT} (1 attempt(s): 400)"
TOOL_ERROR = "There is no tool named TOOL-ERROR-MARKER."


@pytest.fixture
def people(make_user):
    customer = make_user("alice")
    analyst = make_user("ann")
    analyst.groups.add(access.analysts_group())
    reader = make_user("rita")
    reader.groups.add(access.analysts_group())
    reader.user_permissions.add(Permission.objects.get(codename="view_ai_content"))
    agent = make_user("dana", is_staff=True)
    agent.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="support", codename__in=["view_ticket", "change_ticket"]
        )
    )
    bare_staff = make_user("sam", is_staff=True)  # staff, but no permission of the console
    admin = make_user("root", is_staff=True, is_superuser=True)
    return {
        "admin": admin,
        "analyst": analyst,
        "reader": reader,
        "agent": agent,
        "staff": bare_staff,
        "customer": customer,
        "anonymous": None,
    }


@pytest.fixture
def traces(people):
    customer = people["customer"]
    conversation = factories.conversation(customer)
    ticket = factories.ticket(customer)
    for trace_id in (conversation.ai_session_id, ticket.ai_session_id):
        factories.create_generation(
            trace_id=trace_id,
            session_id=trace_id,
            user=customer,
            model="gpt-4o-mini",
            input=[{"role": "user", "content": PROMPT}],
            output=[{"role": "assistant", "content": ANSWER}],
        )
        factories.create_generation(
            trace_id=trace_id, session_id=trace_id, user=customer, model="gpt-4o-mini", step=2,
            is_error=True,
            http_status=400, error=PROVIDER_ERROR,
        )  # fmt: skip
        factories.span(trace_id=trace_id, user=customer, output_state=TOOL_OUTPUT)
        factories.span(trace_id=trace_id, user=customer, is_error=True, error=TOOL_ERROR)
    return {"chat": conversation.ai_session_id, "ticket": ticket.ai_session_id}


CONSOLE_PAGES = ["analytics:dashboard", "analytics:budgets", "analytics:traces",
                 "analytics:experiments",
                 "analytics:export"]  # fmt: skip
CONSOLE = {"admin": 200, "analyst": 200, "reader": 200, "agent": 403, "staff": 403,
           "customer": 403, "anonymous": "login"}  # fmt: skip
# The pages of one trace, and of one session (a conversation's, a ticket's): who may open them.
SESSION = {
    "chat": {"admin": 200, "analyst": 200, "reader": 200, "agent": 403, "staff": 403,
             "customer": 403, "anonymous": "login"},
    "ticket": {"admin": 200, "analyst": 200, "reader": 200, "agent": 200, "staff": 403,
               "customer": 403, "anonymous": "login"},
}  # fmt: skip
# Every URL name of the console, and where this file checks who may open it.
COVERED = {*CONSOLE_PAGES, "analytics:trace", "analytics:session"}


def get(client, who, url):
    if who is not None:
        client.force_login(who)
    return client.get(url)


def outcome(response):
    """200, 403, ... or "login" (sent to log in first)."""
    if response.status_code == 302 and response.url.startswith(reverse("login") + "?next="):
        return "login"
    return response.status_code


@pytest.mark.parametrize("role", list(CONSOLE))
@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_console_pages(client, people, traces, role, name):
    assert outcome(get(client, people[role], reverse(name))) == CONSOLE[role]


def test_the_matrix_covers_every_console_url():
    """A new console page must be added to the matrix above."""
    from iridium.analytics import urls

    names = {f"{urls.app_name}:{pattern.name}" for pattern in urls.urlpatterns}
    assert names == COVERED


@pytest.mark.parametrize("role", list(CONSOLE))
@pytest.mark.parametrize("kind", list(SESSION))
def test_session_pages(client, people, traces, role, kind):
    response = get(client, people[role], reverse("analytics:session", args=[traces[kind]]))
    assert outcome(response) == SESSION[kind][role]
    if response.status_code == 200:  # figures only, whoever reads it
        html = response.content.decode()
        assert "gpt-4o-mini" in html
        for marker in (PROMPT, ANSWER, TOOL_OUTPUT, TOOL_ERROR):
            assert marker not in html


# The trace pages: (status, whether the prompts, answers and tool output are shown).
TRACE = {
    "chat": {"admin": (200, True), "analyst": (200, False), "reader": (200, True),
             "agent": (403, False), "staff": (403, False), "customer": (403, False),
             "anonymous": ("login", False)},
    "ticket": {"admin": (200, True), "analyst": (200, False), "reader": (200, True),
               "agent": (200, True), "staff": (403, False), "customer": (403, False),
               "anonymous": ("login", False)},
}  # fmt: skip


@pytest.mark.parametrize("role", list(CONSOLE))
@pytest.mark.parametrize("kind", list(TRACE))
def test_trace_pages_and_their_content(client, people, traces, role, kind):
    status, content = TRACE[kind][role]
    response = get(client, people[role], reverse("analytics:trace", args=[traces[kind]]))
    assert outcome(response) == status
    if status != 200:
        return
    html = response.content.decode()
    assert "gpt-4o-mini" in html  # the figures are there for everyone who may open it
    for marker in (PROMPT, ANSWER, TOOL_OUTPUT, TOOL_ERROR):
        assert (marker in html) is content, marker
    # An error's text is content too: without it, its type and status only.
    assert ("BadRequestError (HTTP 400)" in html) is not content
    assert "BadRequestError" in html


@pytest.mark.parametrize(("role", "content"), [("analyst", False), ("reader", True),
                                               ("admin", True)])  # fmt: skip
def test_the_export_has_whole_errors_only_for_who_may_read_content(
    client, people, traces, role, content
):
    client.force_login(people[role])
    response = client.get(reverse("analytics:export"), {"period": "7d"})
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    errors = sorted(row["error"] for row in rows if row["is_error"] == "True")
    if content:
        assert errors == [PROVIDER_ERROR, PROVIDER_ERROR]
    else:
        assert errors == ["BadRequestError (HTTP 400)"] * 2
        assert "PROMPT-MARKER" not in body


@pytest.mark.parametrize(
    ("error", "status", "shown"),
    [
        (PROVIDER_ERROR, 400, "BadRequestError (HTTP 400)"),
        ("APITimeoutError (HTTP 504) (3 attempt(s): 504, 504, 504)", 504,
         "APITimeoutError (HTTP 504)"),
        ("CutStream", None, "CutStream"),
        ("The call was interrupted: its worker stopped before it ended.", None, "Error"),
        (TOOL_ERROR, None, "Error"),
        ("The tool failed.", None, "Error"),
        ("", None, ""),
    ],
)  # fmt: skip
def test_without_content_an_error_is_its_type_and_status(error, status, shown):
    assert access.error_shown(error, status=status, content=False) == shown
    assert access.error_shown(error, status=status, content=True) == error


def test_an_agent_reads_only_the_tickets_they_may_handle(client, people, traces, make_user):
    """Without the permission to change tickets, a staff member handles none."""
    agent = people["agent"]
    agent.user_permissions.remove(Permission.objects.get(codename="change_ticket"))
    response = get(client, agent, reverse("analytics:trace", args=[traces["ticket"]]))
    assert response.status_code == 403
    # and a ticket number that does not exist grants nothing
    client.force_login(people["agent"])
    assert client.get(reverse("analytics:trace", args=["support-ticket-999999"])).status_code == 403
    assert client.get(reverse("analytics:trace", args=["support-ticket-x"])).status_code == 403


def test_the_analysts_group_has_the_figures_not_the_content(db):
    group = access.analysts_group()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert codenames == set(access.ANALYST_PERMISSIONS) == {"view_console"}


def test_the_menu_shows_analytics_to_who_may_open_it(client, people):
    for role, shown in [("admin", True), ("analyst", True), ("agent", False),
                        ("customer", False)]:  # fmt: skip
        client.force_login(people[role])
        html = client.get(reverse("home")).content.decode()
        assert (reverse("analytics:dashboard") in html) is shown, role


def test_reads_of_ai_content_and_exports_are_audited(client, people, traces):
    from iridium.accounts.models import AuditEntry

    client.force_login(people["analyst"])  # figures only: nothing read, nothing written
    client.get(reverse("analytics:trace", args=[traces["chat"]]))
    assert not AuditEntry.objects.exists()
    client.force_login(people["admin"])
    client.get(reverse("analytics:trace", args=[traces["chat"]]))
    client.force_login(people["agent"])
    client.get(reverse("analytics:trace", args=[traces["ticket"]]))
    client.force_login(people["analyst"])
    b"".join(client.get(reverse("analytics:export"), {"period": "7d"}).streaming_content)
    entries = [(e.actor, e.action, e.target, e.subject) for e in AuditEntry.objects.order_by("pk")]
    assert entries == [
        (people["admin"], "read trace content", traces["chat"], people["customer"]),
        (people["agent"], "read trace content", traces["ticket"], people["customer"]),
        (people["analyst"], "export generations", "generations 7d", None),
    ]
