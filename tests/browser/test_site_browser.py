"""What every page shares: the favicon, the colour theme toggle, the "/" shortcut and a focus
ring that can be seen in both themes."""

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
