"""The generate page's forms and a snippet's download, as a person (and a screen reader) meets
them."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import log_in, new_page

pytestmark = pytest.mark.browser


def test_every_label_names_its_own_field(live_url, ai_settings, user, browser):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/generate/")
    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    strays = page.evaluate(
        """[...document.querySelectorAll('form label[for]')]
             .filter(l => !l.closest('form').contains(document.getElementById(l.htmlFor)))
             .map(l => l.textContent)"""
    )
    assert strays == []
    for label, form in (("What to build", "code"), ("Topic", "content")):
        page.get_by_text(label, exact=True).click()
        focused = page.evaluate("document.activeElement.closest('form').action")
        assert focused.endswith(f"/generate/new/{form}/"), (label, focused)
    expect(page.get_by_role("textbox", name="Topic")).to_be_visible()
    expect(page.get_by_role("textbox", name="What to build")).to_be_visible()
    page.context.close()


def test_download_saves_the_code_only(live_url, ai_settings, user, browser, tmp_path):
    page = new_page(browser, accept_downloads=True)
    log_in(page, live_url, user)
    page.goto(live_url + "/generate/")
    page.get_by_label("What to build").fill("A function that greets a user")
    page.get_by_label("Language").select_option("python")
    page.get_by_role("button", name="Generate code").click()
    answer = page.locator(".message.assistant")
    expect(answer.locator(".usage")).to_be_visible(timeout=15_000)
    shown_code = answer.locator("pre").inner_text()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    text = Path(saved).read_text()
    creation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert saved.name == f"iridium-code-{creation_id}.py"
    assert text.strip() == shown_code.strip()
    assert text.startswith("def demo_answer(")
    assert "```" not in text and "Demo answer" not in text
    page.context.close()
