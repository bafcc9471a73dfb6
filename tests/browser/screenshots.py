"""Screenshots of the main pages for docs/screenshots/, light and dark, desktop and phone.

Not part of the test suite (its name does not start with test_): `scripts/screenshots.py` runs
it with IRIDIUM_SCREENSHOTS set to the folder to write. It drives the same real server, demo
provider and Chromium as the browser tests, and checks each page before taking its picture.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from support.models import Ticket, TicketMessage
from tests import factories
from tests.helpers.browser import DESKTOP, PHONE, horizontal_overflow, log_in, new_page

pytestmark = pytest.mark.browser

SHOTS = [
    # (page, size, scheme)
    ("chat", DESKTOP, "light"),
    ("chat", DESKTOP, "dark"),
    ("chat", PHONE, "light"),
    ("chat", PHONE, "dark"),
    ("ticket", DESKTOP, "light"),
    ("ticket", PHONE, "dark"),
    ("generate", DESKTOP, "dark"),
    ("generate", PHONE, "light"),
]


def _name(page_name, size, scheme):
    return f"{page_name}-{'desktop' if size is DESKTOP else 'phone'}-{scheme}.png"


@pytest.fixture
def ticket_thread(make_user):
    """A ticket answered by the assistant and by staff (made before the browser opens)."""
    user = make_user("ursula")
    agent = make_user("dana", is_staff=True)
    ticket = factories.ticket(user, title="Refund for a double charge")
    TicketMessage.objects.create(
        ticket=ticket,
        kind=TicketMessage.Kind.ASSISTANT,
        content="I am sorry about the double charge. Refunds take **3 to 5 days**:\n\n"
        "1. Open *Billing*.\n2. Choose the invoice.\n3. Press **Request refund**.",
        html="<p>I am sorry about the double charge. Refunds take <strong>3 to 5 days</strong>:"
        "</p>\n<ol>\n<li>Open <em>Billing</em>.</li>\n<li>Choose the invoice.</li>\n"
        "<li>Press <strong>Request refund</strong>.</li>\n</ol>\n",
    )
    TicketMessage.objects.create(
        ticket=ticket,
        kind=TicketMessage.Kind.AGENT,
        author=agent,
        content="I have refunded the second charge; you will see it on Friday.",
    )
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.PENDING)
    return user, ticket


def test_screenshots(live_url, ai_settings, ticket_thread, browser):
    folder = os.environ.get("IRIDIUM_SCREENSHOTS")
    if not folder:
        pytest.fail("Set IRIDIUM_SCREENSHOTS to the folder to write (scripts/screenshots.py does).")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    user, ticket = ticket_thread

    # Real answers, streamed by the demo provider and rendered by the server.
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    questions = ("How do I reset my password?", "Write a python function that greets me")
    for number, question in enumerate(questions, start=1):
        page.get_by_label("Message").fill(question)
        page.get_by_label("Message").press("Enter")
        expect(page.locator(".message.assistant .usage")).to_have_count(number, timeout=15_000)
    chat_url = page.url
    page.goto(live_url + "/generate/")
    page.get_by_label("What to build").fill("A function that greets a user by name")
    page.get_by_role("button", name="Generate code").click()
    expect(page.locator(".message.assistant .usage")).to_be_visible(timeout=15_000)
    creation_url = page.url
    page.context.close()

    urls = {"chat": chat_url, "ticket": f"{live_url}/support/tickets/{ticket.pk}/"}
    urls["generate"] = creation_url

    for page_name, size, scheme in SHOTS:
        page = new_page(browser, size=size, scheme=scheme)
        log_in(page, live_url, user)
        page.goto(urls[page_name])
        expect(page.locator(".messages-list > .message").first).to_be_visible()
        page.wait_for_timeout(300)  # the socket's ready frame
        assert horizontal_overflow(page) == 0
        page.screenshot(path=folder / _name(page_name, size, scheme))
        page.context.close()
