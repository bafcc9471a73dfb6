"""PostHog in the browser: the real posthog-js (static/vendor/posthog-js) in a real Chromium,
against the loopback PostHog server, beside the server's own AI events."""

import json

import pytest
from playwright.sync_api import expect

from iridium.ai.pseudonyms import pseudonym
from tests.helpers.browser import log_in

pytestmark = pytest.mark.browser

SECRET_QUESTION = "Quokka marmalade umbrella 4417"


def new_page(browser):
    """A page whose browser does not call itself headless: posthog-js drops the events of
    browsers it takes for bots, as PostHog does."""
    probe = browser.new_page()
    agent = probe.evaluate("navigator.userAgent").replace("HeadlessChrome", "Chrome")
    probe.context.close()
    context = browser.new_context(user_agent=agent)
    context.add_init_script("Object.defineProperty(navigator, 'webdriver', {get: () => false})")
    context.set_default_timeout(10_000)
    return context.new_page()


def csp_refusals(page) -> list[str]:
    refusals = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and refusals.append(message.text),
    )
    return refusals


def test_the_page_and_the_ai_call_share_a_person_and_a_session(
    live_url, ai_settings, fake_posthog, make_user, browser
):
    ai_settings.POSTHOG_WEB_KEY = "phc_web_test"  # its host: POSTHOG_HOST, the loopback server
    ai_settings.ANALYTICS_PSEUDONYMOUS_PLANS = ["pro"]
    person = make_user("quinn", plan="pro")
    page = new_page(browser)
    refusals = csp_refusals(page)
    log_in(page, live_url, person)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_function("window.posthog && window.posthog.__loaded")

    page.get_by_label("Message").fill(SECRET_QUESTION)
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".message.assistant .usage")).to_contain_text("gpt-4o-mini")
    answer_text = page.locator(".message.assistant .answer-body").inner_text()

    generation = fake_posthog.wait_for(1, "$ai_generation", timeout=15)[0]
    span = fake_posthog.wait_for(1, "$ai_span", timeout=15)[0]
    browser_session = page.evaluate("window.posthog.get_session_id()")
    browser_person = page.evaluate("window.posthog.get_distinct_id()")
    assert browser_person == pseudonym(person.pk) == generation["distinct_id"]
    assert generation["properties"]["$session_id"] == browser_session
    assert span["properties"]["$session_id"] == browser_session

    # The browser's own events: pageviews by the same person in the same session.
    pageviews = fake_posthog.wait_for(2, "$pageview", timeout=15)
    assert {e["properties"]["token"] for e in pageviews} == {"phc_web_test"}
    last = pageviews[-1]
    assert last["properties"]["distinct_id"] == pseudonym(person.pk)
    assert last["properties"]["$session_id"] == browser_session

    # The replay shows the page, not what was asked or answered.
    # (rrweb masks a text with as many asterisks: the question, recorded and masked.)
    snapshots = json.dumps(fake_posthog.wait_for_snapshots("*" * len(SECRET_QUESTION)))
    assert "New conversation" in snapshots  # the page's own text is recorded
    assert SECRET_QUESTION not in snapshots
    assert "Quokka" not in snapshots
    assert answer_text[:40] not in snapshots
    assert refusals == []
    page.context.close()


def test_without_a_web_key_no_posthog_is_loaded(live_url, ai_settings, user, browser):
    page = browser.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    assert page.locator("script[src*=posthog], #posthog-config").count() == 0
    assert page.evaluate("typeof window.posthog") == "undefined"
    page.context.close()
