"""The public demo on the home page, as a visitor without an account sees it: they ask, the
answer streams and is rendered as Markdown, the page invites them to sign up, and once their
questions for the day are used up the refusal says so with a sign-up link. At desktop and phone
widths, with nothing scrolling sideways on the phone."""

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import SIZES, horizontal_overflow, new_page

pytestmark = pytest.mark.browser

SCREENSHOTS = "/tmp/public-demo-{}.png"


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_visitor_tries_the_assistant_and_is_invited_to_sign_up(
    live_url, ai_settings, browser, size
):
    ai_settings.PUBLIC_DEMO = True
    ai_settings.PUBLIC_DEMO_VISITOR_RATE = "1/d"
    page = new_page(browser, size=SIZES[size])
    complaints = []
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    page.goto(live_url + "/")
    demo = page.locator("[data-public-demo]")
    expect(demo.get_by_role("heading", name="Try the assistant")).to_be_visible()
    expect(demo.get_by_test_id("signup-invitation")).to_contain_text("Sign up free")

    box = demo.get_by_label("Ask the assistant")
    box.fill("Write a python function [[demo:slow=0.02]]")
    box.press("Enter")
    expect(demo.locator(".message.user")).to_contain_text("Write a python function")
    answer = demo.locator(".message.assistant")
    expect(answer).to_have_class("message assistant streaming")  # it streams
    expect(answer.locator(".answer-body p").first).to_be_visible()
    expect(answer).to_have_class("message assistant", timeout=15_000)  # and ends
    expect(answer.locator(".answer-body pre code")).to_be_visible()  # Markdown, rendered
    assert "```" not in answer.inner_text()
    assert horizontal_overflow(page) == 0
    page.screenshot(path=SCREENSHOTS.format(size), full_page=True)

    box.fill("And another one?")
    box.press("Enter")
    notice = demo.locator("[data-notice]")
    expect(notice).to_contain_text("Sign up to keep going")
    expect(notice.get_by_role("link", name="Sign up free")).to_have_attribute(
        "href", "/accounts/signup/"
    )
    expect(box).to_have_value("And another one?")  # the question is given back
    expect(demo.locator(".message.user")).to_have_count(1)
    assert horizontal_overflow(page) == 0
    page.screenshot(path=SCREENSHOTS.format(f"{size}-refused"), full_page=True)
    assert complaints == []
    page.context.close()
