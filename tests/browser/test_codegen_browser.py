import pytest
from playwright.sync_api import expect

from tests.helpers.browser import log_in

pytestmark = pytest.mark.browser


def test_generate_a_snippet_and_copy_it(live_url, ai_settings, user, browser):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_url, user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Generate").click()
    page.get_by_label("What to build").fill("A function that greets a user [[demo:slow=0.02]]")
    page.get_by_label("Language").select_option("python")
    page.get_by_role("button", name="Generate code").click()

    result = page.locator(".message.assistant")
    expect(result.locator("pre")).to_be_visible()  # streamed in, then highlighted
    expect(result.locator("pre .k").first).to_have_text("def")
    page.get_by_role("button", name="Copy code").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "def demo_answer" in copied
    expect(page.get_by_role("link", name="Download")).to_have_attribute("download", "")

    page.get_by_role("link", name="← Generate").click()
    expect(page.get_by_role("link", name="A function that greets a user")).to_be_visible()
    context.close()
