"""The chat page as a person sees it: the newest text is never under the composer, the view
follows an answer as it streams unless the person scrolled up, and a new answer replaces the one
it regenerates. Desktop (1280x800) and phone (390x844)."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.helpers.browser import SIZES, box, log_in, new_page

pytestmark = pytest.mark.browser

PARAGRAPH = " ".join(["This earlier answer fills the page so that it has to scroll."] * 8)


# Rows are made by fixtures, before the browser opens (see tests/live.py's `browser`).
@pytest.fixture
def long_conversation(user):
    messages = []
    for number in range(8):
        messages += [("user", f"Earlier question {number}"), ("assistant", PARAGRAPH)]
    return factories.conversation(user, title="A long conversation", messages=messages)


def newest_is_above_the_composer(page):
    newest = box(page.locator(".messages-list > .message").last)
    composer = box(page.locator("[data-composer]"))
    assert newest["bottom"] <= composer["y"] + 1, (newest, composer)
    assert newest["bottom"] > 0, newest  # on screen, not scrolled past
    return newest, composer


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_newest_text_is_above_the_composer_while_waiting_streaming_and_after(
    live_url, ai_settings, user, long_conversation, browser, size
):
    conversation = long_conversation
    page = new_page(browser, size=SIZES[size])
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    expect(page.locator(".messages-list > .message")).to_have_count(16)
    newest_is_above_the_composer(page)  # on opening

    box_ = page.get_by_label("Message")
    box_.fill("Write a python function please [[demo:slow=0.15]]")
    box_.press("Enter")
    expect(page.locator(".message.user").last).to_contain_text("Write a python function please")
    own = box(page.locator(".message.user").last)
    assert own["y"] >= 0 and own["bottom"] <= box(page.locator("[data-composer]"))["y"] + 1

    answer = page.locator(".message.assistant").last
    expect(answer.locator("[data-thinking]")).to_be_visible()  # waiting for the first token
    newest_is_above_the_composer(page)
    expect(answer.locator(".answer-body.streaming")).to_contain_text("Demo answer")  # streaming
    newest_is_above_the_composer(page)
    expect(answer.locator(".answer-body.streaming pre")).to_be_visible(timeout=15_000)
    newest_is_above_the_composer(page)

    expect(answer.locator(".usage")).to_contain_text("gpt-4o-mini", timeout=15_000)  # finished
    newest_is_above_the_composer(page)
    copy_answer = answer.get_by_role("button", name="Copy answer")
    copy_answer.focus()
    assert box(copy_answer)["bottom"] <= box(page.locator("[data-composer]"))["y"] + 1
    page.context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_scrolling_up_stops_the_follow_and_jump_to_latest_brings_it_back(
    live_url, ai_settings, user, long_conversation, browser, size
):
    conversation = long_conversation
    page = new_page(browser, size=SIZES[size])
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    box_ = page.get_by_label("Message")
    box_.fill("Tell me a long story [[demo:slow=0.03]] [[demo:words=400]]")
    box_.press("Enter")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".answer-body.streaming")).to_contain_text("word")
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_hidden()  # following: nothing to jump to

    page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
    first = page.locator(".messages-list > .message").first
    before = box(first)["y"]
    expect(jump).to_be_visible()  # more text arrived below
    page.wait_for_timeout(600)
    assert box(first)["y"] == before  # the view stayed where the person was reading

    jump.click()
    expect(jump).to_be_hidden()
    newest_is_above_the_composer(page)
    page.wait_for_timeout(600)  # still streaming: followed again
    newest_is_above_the_composer(page)
    expect(answer.locator(".usage")).to_be_visible(timeout=20_000)
    newest_is_above_the_composer(page)
    assert re.search(r"word\d+", answer.locator(".answer-body").inner_text())
    page.context.close()


def test_text_that_arrives_before_the_scroll_event_does_not_undo_a_scroll_up(
    live_url, ai_settings, user, long_conversation, browser
):
    # A scroll event is dispatched a frame after the scroll. Text arriving in between (a token's
    # render) must see that the person left the end, not a stale "following", and stay put.
    page = new_page(browser, size=SIZES["desktop"])
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{long_conversation.pk}/")
    found = page.evaluate(
        """async () => {
          const { follower } = await import('/static/js/follow.js');
          const button = document.createElement('button');
          button.hidden = true;
          const follow = follower(button);
          follow.toEnd();
          const end = document.scrollingElement.scrollTop;
          window.scrollTo({ top: 0, behavior: 'instant' });
          follow.grew();  // in the same task: no scroll event has run yet
          return { end, top: document.scrollingElement.scrollTop, shown: !button.hidden };
        }"""
    )
    assert found["end"] > 0, found  # the page is long enough to scroll
    assert found["top"] == 0, found  # the view stayed where the person went
    assert found["shown"], found  # and "Jump to latest" is offered
    page.context.close()
