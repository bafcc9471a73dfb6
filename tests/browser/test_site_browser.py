"""What every page shares: the favicon, the colour theme toggle, the "/" shortcut and a focus
ring that can be seen in both themes."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.helpers.browser import log_in, new_page

pytestmark = pytest.mark.browser


@pytest.fixture
def conversation(user):  # made before the browser opens (see tests/live.py's `browser`)
    return factories.conversation(user, messages=[("user", "Hi"), ("assistant", "Hello")])


def test_pages_have_a_favicon_and_no_missing_files(
    live_url, ai_settings, user, conversation, browser
):
    page = new_page(browser)
    failures = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    log_in(page, live_url, user)
    for path in ("/", f"/chat/{conversation.pk}/", "/support/", "/generate/"):
        page.goto(live_url + path)
        expect(page.locator("[data-theme-toggle]")).to_be_visible()
    icon = page.locator("link[rel='icon']").get_attribute("href")
    response = page.request.get(live_url + icon)
    assert response.status == 200 and response.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in response.body()
    assert failures == [], failures
    page.context.close()


def test_the_pages_keep_to_the_content_security_policy(
    live_url, ai_settings, user, conversation, browser
):
    page = new_page(browser)
    complaints = []
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    log_in(page, live_url, user)
    response = page.goto(f"{live_url}/chat/{conversation.pk}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Message").fill("Write a python function **now** [[demo:slow=0.01]]")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".message.assistant").last.locator(".usage")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name=re.compile("Colour theme")).click()
    page.goto(live_url + "/support/")
    page.goto(live_url + "/generate/")
    assert complaints == []
    page.context.close()
