"""Before the first token the answer shows that it is being worked on, and says plainly when
the provider is slow, instead of a silent empty box."""

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import log_in, new_page

pytestmark = pytest.mark.browser


def test_thinking_then_slow_then_the_answer(live_url, ai_settings, user, browser):
    # The tests' read timeout is 2 s, so the page calls the provider slow after 2/3 s.
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Message").fill("Hello [[demo:slow=1.3]] [[demo:words=3]]")
    page.get_by_label("Message").press("Enter")

    answer = page.locator(".message.assistant").last
    thinking = answer.locator("[data-thinking]")
    expect(thinking).to_be_visible()
    expect(thinking).to_contain_text("Thinking")
    slow = answer.get_by_role("status").filter(has_text="The provider is slow")
    expect(slow).to_be_visible(timeout=3_000)
    expect(thinking).to_be_visible()  # still no token: both say so
    expect(answer.locator(".answer-body.streaming")).to_contain_text("Demo", timeout=10_000)
    expect(thinking).to_have_count(0)
    expect(answer.locator(".usage")).to_be_visible(timeout=15_000)
    expect(answer.locator("[data-slow]")).to_have_count(0)  # gone with the answer's end
    page.context.close()
