"""What a person sees after a refusal, Regenerate, Retry, their first message and a rename."""

import pytest
from playwright.sync_api import expect

from chat.views import TITLE_REQUIRED
from iridium.ai import errors
from tests import factories
from tests.helpers.browser import box, log_in, new_page

pytestmark = pytest.mark.browser


# Rows are made by fixtures, before the browser opens (see tests/live.py's `browser`).
@pytest.fixture
def no_requests_left(user):
    user.plan.daily_request_limit = 0
    user.plan.save()


@pytest.fixture
def answered(user):
    return factories.conversation(
        user, messages=[("user", "Hello there"), ("assistant", "An old answer")]
    )


@pytest.fixture
def keep_me(user):
    return factories.conversation(user, title="Keep me")


def test_a_refused_message_goes_back_to_the_composer_once(
    live_url, ai_settings, user, no_requests_left, browser
):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    box_ = page.get_by_label("Message")
    box_.fill("Anyone there?")
    box_.press("Enter")

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(errors.DAILY_LIMIT_REACHED.format(limit=0) + " See plans")
    expect(alert.get_by_role("link", name="See plans")).to_have_attribute("href", "/plans/")
    expect(page.locator(".messages-list > .message")).to_have_count(0)  # no empty answer
    expect(box_).to_have_value("Anyone there?")  # given back, once
    assert "Anyone there?" not in page.locator("main").inner_text()
    page.reload()
    expect(page.locator(".messages-list > .message")).to_have_count(0)
    page.context.close()


def test_regenerate_replaces_the_answer(live_url, ai_settings, user, answered, browser):
    conversation = answered
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    expect(page.locator(".messages-list > .message")).to_have_count(2)
    page.get_by_role("button", name="Regenerate").click()
    expect(page.locator("[data-announcer]")).to_have_text("The answer is complete.")
    # The old answer is kept as an earlier version, out of sight (< 2/2 > flips to it).
    shown = page.locator(".messages-list > .message:visible")
    expect(shown.filter(has=page.locator(".answer-body"))).to_have_count(1)
    expect(shown.last).to_contain_text("Demo answer")
    expect(shown.last.get_by_text("2/2")).to_be_visible()
    count = shown.count()
    page.reload()
    expect(shown.last).to_contain_text("Demo answer")
    assert shown.count() == count == 2
    assert page.locator(".messages-list > .message").count() == 3
    page.context.close()


def test_retry_after_retry_leaves_one_error_card(live_url, ai_settings, user, browser):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Message").fill("Break please [[demo:fault=500]]")
    page.get_by_label("Message").press("Enter")
    failed = page.locator(".message.assistant.error")
    expect(failed).to_have_count(1, timeout=15_000)
    first_id = failed.get_attribute("data-message-id")

    for _ in range(2):
        previous = failed.get_attribute("data-message-id")
        failed.get_by_role("button", name="Retry").click()
        expect(page.locator(f'[data-message-id="{previous}"]')).to_have_count(0)
        expect(failed).to_have_count(1, timeout=15_000)
        expect(page.get_by_role("button", name="Retry")).to_have_count(1)
    assert failed.get_attribute("data-message-id") != first_id
    page.reload()
    expect(page.locator(".message.assistant.error")).to_have_count(1)
    expect(page.locator(".messages-list > .message")).to_have_count(2)
    page.context.close()


def test_the_sidebar_takes_the_title_of_the_first_message(live_url, ai_settings, user, browser):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    sidebar = page.get_by_role("navigation", name="Conversations")
    expect(sidebar.locator("a[aria-current='page']")).to_have_text("New conversation")
    page.get_by_label("Message").fill("Plan a trip to Lisbon\nwith children")
    page.get_by_label("Message").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plan a trip to Lisbon")
    expect(sidebar.locator("a[aria-current='page']")).to_have_text("Plan a trip to Lisbon")
    assert page.title() == "Plan a trip to Lisbon · Iridium"
    page.context.close()


def test_an_empty_rename_says_why_where_it_can_be_seen(
    live_url, ai_settings, user, keep_me, browser
):
    conversation = keep_me
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    page.get_by_text("Rename or delete").click()
    page.get_by_label("New title").fill("   ")
    page.get_by_role("button", name="Rename").click()

    error = page.get_by_role("alert")
    expect(error).to_have_text(TITLE_REQUIRED)
    expect(error).to_be_visible()
    shown = box(error)
    assert shown["height"] > 0 and 0 <= shown["y"] < 800
    expect(page.get_by_label("New title")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", level=1)).to_have_text("Keep me")
    page.context.close()
