"""The pages on a phone (390x844): nothing scrolls sideways, the header stays small, the
composer's placeholder fits, Copy code covers no code, and the conversation list is a tap away."""

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.helpers.browser import PHONE, box, horizontal_overflow, log_in, new_page

pytestmark = pytest.mark.browser

LONG_WORD = "Supercalifragilisticexpialidocious" * 3


# Rows are made by fixtures, before the browser opens (see tests/live.py's `browser`).
@pytest.fixture
def long_words(user):
    conversation = factories.conversation(
        user,
        title=f"A title with {LONG_WORD}",
        messages=[("user", f"A long word: {LONG_WORD}"), ("assistant", f"Indeed {LONG_WORD}")],
    )
    ticket = factories.ticket(user, title=f"Ticket {LONG_WORD}", description=LONG_WORD)
    creation = factories.creation(
        user, language="python", content="```python\n" + "x = 1  # " + LONG_WORD + "\n```\n"
    )
    return conversation, ticket, creation, factories.support_agent("dana")


@pytest.fixture
def conversations(user):
    for number in range(3):
        factories.conversation(user, title=f"Older chat {number}")
    return factories.conversation(user, title="Code on a phone")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_scrolls_sideways_on_a_phone(
    live_url, ai_settings, user, long_words, browser, scheme
):
    conversation, ticket, creation, agent = long_words
    page = new_page(browser, size=PHONE, scheme=scheme)
    log_in(page, live_url, user)
    for path in (
        "/",
        "/chat/",
        f"/chat/{conversation.pk}/",
        "/support/",
        f"/support/tickets/{ticket.pk}/",
        "/support/articles/",
        "/generate/",
        f"/generate/{creation.pk}/",
    ):
        page.goto(live_url + path)
        expect(page.get_by_test_id("plan-badge")).to_be_visible()
        assert horizontal_overflow(page) == 0, path
    page.context.close()

    staff = new_page(browser, size=PHONE, scheme=scheme)
    log_in(staff, live_url, agent)
    for path in ("/support/queue/", f"/support/tickets/{ticket.pk}/"):
        staff.goto(live_url + path)
        expect(staff.get_by_test_id("plan-badge")).to_be_visible()
        assert horizontal_overflow(staff) == 0, path
    staff.context.close()


def test_the_chat_page_fits_a_phone(live_url, ai_settings, user, conversations, browser):
    conversation = conversations
    page = new_page(browser, size=PHONE)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")

    header = box(page.locator(".site-header"))
    assert page.locator(".demo-banner").count() == 0  # the demo banner is for staff
    assert header["height"] <= 110, header

    composer = page.get_by_label("Message")
    fits = composer.evaluate(
        """(e) => { const style = getComputedStyle(e);
                    const context = document.createElement('canvas').getContext('2d');
                    context.font = `${style.fontSize} ${style.fontFamily}`;
                    const room = e.clientWidth - parseFloat(style.paddingLeft)
                                 - parseFloat(style.paddingRight);
                    return context.measureText(e.placeholder).width <= room; }"""
    )
    assert fits

    # The other conversations: one tap from the top of the page, not under the composer.
    toggle = page.get_by_role("button", name="Conversations")
    assert box(toggle)["bottom"] <= PHONE["height"]
    expect(page.get_by_role("link", name="Older chat 1")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    link = page.get_by_role("link", name="Older chat 1")
    expect(link).to_be_visible()
    assert box(link)["bottom"] <= box(page.locator("[data-composer]"))["y"]
    assert page.evaluate("window.scrollY") == 0
    page.keyboard.press("Escape")  # closes it, back on its toggle
    expect(link).to_be_hidden()
    expect(toggle).to_be_focused()
    toggle.click()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Older chat 1")

    page.goto(f"{live_url}/chat/{conversation.pk}/")
    composer = page.get_by_label("Message")
    composer.fill("Write a python function please")
    composer.press("Enter")
    code = page.locator(".message.assistant pre").last
    expect(page.locator(".message.assistant .usage")).to_be_visible(timeout=15_000)
    copy = page.get_by_role("button", name="Copy code")
    assert box(copy)["bottom"] <= box(code)["y"] + 0.5  # above the code, not over it
    first_line = code.evaluate(
        """(pre) => { const range = document.createRange(); range.selectNodeContents(pre);
                      const r = range.getClientRects()[0]; return {y: r.y, right: r.right}; }"""
    )
    assert first_line["y"] >= box(copy)["bottom"]
    assert horizontal_overflow(page) == 0
    page.context.close()
