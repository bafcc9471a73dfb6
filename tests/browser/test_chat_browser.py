import re

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import log_in, wait_until_connected

pytestmark = pytest.mark.browser


def test_chat_stream_stop_reload_rename_delete(live_url, ai_settings, user, browser):
    page = browser.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_url, user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    page.get_by_role("button", name="New conversation").click()
    wait_until_connected(page)

    box = page.get_by_label("Message")
    box.fill("Tell me a long story [[demo:slow=0.05]] [[demo:words=400]]")
    box.press("Enter")
    answer = page.locator(".message.assistant").last
    streaming = answer.locator(".answer-body.streaming")
    expect(streaming).to_have_text(re.compile(r"Demo answer"))
    first_length = len(streaming.inner_text())
    page.wait_for_function(
        "n => document.querySelector('.message.assistant .answer-body').textContent.length > n",
        arg=first_length,
    )  # tokens keep arriving
    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".status-note")).to_have_text("Stopped", timeout=15_000)
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    page.reload()
    wait_until_connected(page)
    expect(page.locator(".message.user").first).to_contain_text("Tell me a long story")
    expect(page.locator(".message.assistant .status-note")).to_have_text("Stopped")

    box = page.get_by_label("Message")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    box.press("Enter")
    expect(page.locator(".message.user").last).to_have_text(re.compile("line one\\s+line two"))
    finished = page.locator(".message.assistant").last.locator(".usage")
    expect(finished).to_contain_text("gpt-4o-mini")
    expect(page.locator("[data-announcer]")).to_have_text("The answer is complete.")

    page.get_by_text("Rename or delete").click()
    page.get_by_label("New title").fill("Story time")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Story time")

    page.get_by_text("Rename or delete").click()
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete conversation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Conversations")
    expect(page.get_by_text("Story time")).to_have_count(0)


def test_copy_a_code_block(live_url, ai_settings, user, browser):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Message").fill("Write a python function please")
    page.get_by_label("Message").press("Enter")
    code = page.locator(".message.assistant pre").last
    expect(code).to_be_visible()
    page.get_by_role("button", name="Copy code").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == code.inner_text().strip() and "def " in copied
    context.close()


def test_script_typed_into_the_chat_does_not_run(live_url, ai_settings, user, browser):
    page = browser.new_page()
    page.set_default_timeout(10_000)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    page.get_by_label("Message").fill(payload)
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".message.assistant .usage")).to_be_visible()
    expect(page.locator(".message.user .user-text").last).to_have_text(payload)
    page.reload()
    expect(page.locator(".message.user .user-text").last).to_have_text(payload)
    assert dialogs == []
