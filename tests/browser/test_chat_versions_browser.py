"""What a person sees of answer versions (Regenerate keeps the earlier answers: < 1/2 >) and of
editing a sent question, at desktop and phone widths; a reload shows the same."""

import pytest
from playwright.sync_api import expect

from iridium.ai import errors
from tests import factories
from tests.helpers.browser import SIZES, box, horizontal_overflow, log_in, new_page

pytestmark = pytest.mark.browser


@pytest.fixture
def two_turns(user):
    return factories.conversation(
        user,
        title="Two turns",
        messages=[
            ("user", "First question"),
            ("assistant", "First answer"),
            ("user", "Second question"),
            ("assistant", "Second answer"),
        ],
    )


def shown(page):
    return page.locator(".messages-list > .message:visible")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_editing_a_question_replaces_what_followed(
    live_url, ai_settings, user, two_turns, browser, size
):
    page = new_page(browser, size=SIZES[size])
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{two_turns.pk}/")
    expect(shown(page)).to_have_count(4)

    first = shown(page).first
    first.get_by_role("button", name="Edit this question").click()
    box_ = page.get_by_label("Edit your question")
    expect(box_).to_be_focused()
    expect(box_).to_have_value("First question")
    # It says what sending does before anything is replaced.
    expect(first.get_by_text("Sending replaces the 3 messages after this message.")).to_be_visible()
    box_.fill("First question, said better")
    page.screenshot(path=f"/tmp/versions-edit-{size}.png")
    first.get_by_role("button", name="Replace and send").click()

    expect(page.locator("[data-announcer]")).to_have_text("The answer is complete.")
    expect(shown(page)).to_have_count(2)
    expect(shown(page).first).to_have_text("You First question, said better Edit")
    expect(shown(page).last).to_contain_text('you asked about "First question, said better"')
    assert "Second question" not in page.locator("main").inner_text()
    assert horizontal_overflow(page) == 0
    count = page.locator(".messages-list > .message").count()
    page.reload()
    expect(shown(page)).to_have_count(2)
    assert page.locator(".messages-list > .message").count() == count == 2
    expect(shown(page).last).to_contain_text('you asked about "First question, said better"')
    page.context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_regenerated_answers_are_versions_to_flip_between(
    live_url, ai_settings, user, two_turns, browser, size
):
    page = new_page(browser, size=SIZES[size])
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{two_turns.pk}/")
    for count in (2, 3):
        page.get_by_role("button", name="Regenerate").click()
        expect(shown(page).last.get_by_text(f"{count}/{count}")).to_be_visible()
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()  # the answer is done
    answer = shown(page).last
    versions = answer.get_by_role("group", name="Versions of this answer")
    expect(versions).to_contain_text("3/3")
    expect(shown(page)).to_have_count(4)
    expect(answer).to_contain_text("Demo answer")
    expect(versions.get_by_role("button", name="Next version")).to_be_disabled()
    assert box(versions)["right"] <= SIZES[size]["width"]

    # The keyboard flips back: the earlier versions in turn, the focus kept on the arrow.
    versions.get_by_role("button", name="Previous version").focus()
    page.keyboard.press("Enter")
    answer = shown(page).last
    expect(answer.get_by_role("group", name="Versions of this answer")).to_contain_text("2/3")
    expect(answer.get_by_role("button", name="Previous version")).to_be_focused()
    expect(page.locator("[data-announcer]")).to_have_text("Version 2 of 3.")
    page.keyboard.press("Enter")
    expect(shown(page).last).to_contain_text("Second answer")  # the original
    expect(shown(page).last.get_by_text("1/3")).to_be_visible()
    expect(shown(page).last.get_by_role("button", name="Next version")).to_be_focused()
    page.screenshot(path=f"/tmp/versions-flip-{size}.png")
    expect(shown(page)).to_have_count(4)
    assert horizontal_overflow(page) == 0

    page.reload()
    expect(shown(page)).to_have_count(4)
    expect(shown(page).last.get_by_text("3/3")).to_be_visible()  # the newest, by default
    shown(page).last.get_by_role("button", name="Previous version").click()
    expect(shown(page).last.get_by_text("2/3")).to_be_visible()
    expect(shown(page).last).to_contain_text("Demo answer")
    page.context.close()


@pytest.fixture
def no_requests_left(user):
    user.plan.daily_request_limit = 0
    user.plan.save()


def test_a_refused_edit_keeps_the_conversation_and_the_text(
    live_url, ai_settings, user, two_turns, no_requests_left, browser
):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{two_turns.pk}/")
    first = shown(page).first
    first.get_by_role("button", name="Edit this question").click()
    page.get_by_label("Edit your question").fill("Asked again")
    first.get_by_role("button", name="Replace and send").click()

    expect(page.get_by_role("alert")).to_contain_text(errors.DAILY_LIMIT_REACHED.format(limit=0))
    # Everything is back as it was, and the edit is still in its box to send later.
    expect(shown(page)).to_have_count(4)
    expect(page.get_by_label("Edit your question")).to_have_value("Asked again")
    expect(page.get_by_label("Message")).to_have_value("")
    bodies = page.locator(".messages-list > .message .message-body:visible")
    expect(bodies).to_have_text(["First answer", "Second question", "Second answer"])
    page.reload()
    expect(shown(page)).to_have_count(4)
    expect(shown(page).first).to_contain_text("First question")
    page.context.close()
