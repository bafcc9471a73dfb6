"""A person rates a chat answer with a thumb (and a comment), on a phone-sized page too."""

import pytest
from playwright.sync_api import expect

from iridium.ai.models import Feedback
from tests import factories
from tests.helpers.browser import PHONE, box, log_in, new_page

pytestmark = pytest.mark.browser


@pytest.fixture
def answered(user):
    return factories.conversation(
        user, messages=[("user", "What is a websocket?"), ("assistant", "A two-way channel.")]
    )


def test_a_thumb_on_a_chat_answer_is_kept_and_can_be_changed(
    live_url, ai_settings, user, answered, browser
):
    page = new_page(browser, size=PHONE)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{answered.pk}/")
    answer = page.locator(".message.assistant").last
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    expect(helpful).to_be_visible()
    # Drawn icons, not emoji that a machine without an emoji font shows as empty boxes.
    assert box(helpful.locator("svg"))["width"] >= 12
    expect(helpful).to_have_attribute("aria-pressed", "false")
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("status")).to_have_text("Thanks for your feedback.")
    # Changed to thumbs down, with a comment.
    answer.get_by_text("Comment").click()
    answer.get_by_label("Comment on this answer (optional)").fill("Too short")
    answer.get_by_role("button", name="Not helpful").click()
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(helpful).to_have_attribute("aria-pressed", "false")
    page.reload()
    answer = page.locator(".message.assistant").last
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    [row] = Feedback.objects.all()
    assert (row.rating, row.comment, row.user_id) == ("down", "Too short", user.pk)
    # A comment the server refuses (a NUL in it) says so where it was sent, and changes nothing.
    answer.locator(".feedback-comment").evaluate("box => { box.value = 'bad \\u0000 text'; }")
    answer.get_by_role("button", name="Send feedback").click()
    expect(answer.get_by_role("status")).to_have_text("Not saved.")
    row.refresh_from_db()
    assert row.comment == "Too short"
    page.context.close()
