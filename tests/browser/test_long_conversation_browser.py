"""A long conversation opens with its latest messages; earlier ones load a page at a time, on
the button or by scrolling up, without moving what the person is reading."""

import pytest
from playwright.sync_api import expect

from chat.views import PAGE_MESSAGES
from tests import factories
from tests.helpers.browser import box, log_in, new_page

pytestmark = pytest.mark.browser

MESSAGES = 2 * PAGE_MESSAGES + 20


@pytest.fixture
def long_conversation(user):
    pairs = [
        ("user" if number % 2 == 0 else "assistant", f"Message number {number}")
        for number in range(MESSAGES)
    ]
    return factories.conversation(user, messages=pairs)


def test_earlier_messages_load_a_page_at_a_time(live_url, user, long_conversation, browser):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{long_conversation.pk}/")
    messages = page.locator(".messages-list > .message")
    expect(messages).to_have_count(PAGE_MESSAGES)
    expect(messages.last).to_contain_text(f"Message number {MESSAGES - 1}")

    earlier = page.get_by_role("button", name="Show earlier messages")
    reading = page.locator(".messages-list > .message").last
    before = box(reading)
    earlier.dispatch_event("click")  # pressed where it is, without scrolling to it first
    expect(messages).to_have_count(2 * PAGE_MESSAGES)
    after = box(reading)
    assert abs(after["y"] - before["y"]) < 5, (before, after)  # what was read stays in place
    assert reading.is_visible()

    # Scrolling up to the top brings the rest, and the button goes.
    page.mouse.wheel(0, -100_000)
    expect(messages).to_have_count(MESSAGES, timeout=10_000)
    expect(messages.first).to_contain_text("Message number 0")
    expect(earlier).to_have_count(0)
    page.context.close()
