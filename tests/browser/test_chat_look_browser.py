"""The conversation reads as one: the person's messages and the assistant's look different at a
glance; answer actions stay out of the way until wanted (always there on touch screens); the
keyboard can reach the composer with "/", and its focus can be seen in the dark; the colour theme
can be chosen and is remembered."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.helpers.browser import PHONE, box, log_in, new_page

pytestmark = pytest.mark.browser


def rgb(text):
    return [float(part) for part in re.findall(r"[\d.]+", text)[:3]]


def contrast(first, second):
    def luminance(colour):
        channels = []
        for value in rgb(colour):
            value /= 255
            channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
        red, green, blue = channels
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def style(locator, prop):
    return locator.evaluate(f"(e) => getComputedStyle(e).{prop}")


@pytest.fixture
def conversation(user):
    return factories.conversation(
        user, messages=[("user", "What is Iridium?"), ("assistant", "A chat product.")]
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_messages_read_as_a_conversation(
    live_url, ai_settings, user, conversation, browser, scheme
):
    page = new_page(browser, scheme=scheme)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    mine, answer = page.locator(".message.user"), page.locator(".message.assistant")
    thread = box(page.locator(".messages-list"))
    assert abs(box(mine)["right"] - thread["right"]) <= 1  # the person's: on the right
    assert box(mine)["x"] > thread["x"] + 100
    assert box(answer)["x"] - thread["x"] <= 1  # the assistant's: from the left
    assert style(mine, "backgroundColor") != style(answer, "backgroundColor")

    copy = answer.get_by_role("button", name="Copy answer")
    page.mouse.move(0, 0)
    expect(copy).to_have_css("opacity", "0")  # out of the way...
    answer.hover()
    expect(copy).to_have_css("opacity", "1")  # ...until the answer is pointed at
    page.mouse.move(0, 0)
    expect(copy).to_have_css("opacity", "0")
    copy.focus()
    expect(copy).to_have_css("opacity", "1")  # or reached by keyboard
    regenerate = answer.get_by_role("button", name="Regenerate")
    expect(regenerate).to_be_attached()  # the last answer's own action
    assert box(regenerate)["height"] <= 32
    page.context.close()


def test_actions_are_always_shown_on_touch_screens(
    live_url, ai_settings, user, conversation, browser
):
    page = new_page(browser, size=PHONE)
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    expect(page.get_by_role("button", name="Copy answer")).to_have_css("opacity", "1")
    expect(page.get_by_role("button", name="Regenerate")).to_have_css("opacity", "1")
    page.context.close()


def test_slash_reaches_the_composer_and_focus_shows_in_the_dark(
    live_url, ai_settings, user, conversation, browser
):
    page = new_page(browser, scheme="dark")
    log_in(page, live_url, user)
    page.goto(f"{live_url}/chat/{conversation.pk}/")
    composer = page.get_by_label("Message")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    expect(composer).to_be_focused()
    expect(composer).to_have_value("")  # the "/" only moved the focus
    page.keyboard.type("a/b")
    expect(composer).to_have_value("a/b")  # typed as text once in the composer

    send = page.get_by_role("button", name="Send")
    page.keyboard.press("Shift+Tab")  # away and back by keyboard, so :focus-visible applies
    page.keyboard.press("Tab")
    expect(composer).to_be_focused()
    page.keyboard.press("Tab")
    expect(send).to_be_focused()
    assert style(send, "outlineStyle") == "solid"
    assert float(style(send, "outlineWidth").removesuffix("px")) >= 2
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert contrast(style(send, "outlineColor"), background) >= 3
    page.context.close()


def test_the_theme_toggle_is_remembered_over_the_system_setting(
    live_url, ai_settings, user, browser
):
    page = new_page(browser, scheme="light")
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    background = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
    light = background()
    toggle = page.get_by_role("button", name=re.compile("Colour theme"))
    expect(toggle).to_have_attribute("aria-label", re.compile("follows the system"))
    toggle.click()  # system -> dark
    expect(toggle).to_have_attribute("aria-label", re.compile("dark"))
    dark = background()
    assert dark != light and contrast(dark, "rgb(0, 0, 0)") < 1.5
    page.reload()
    assert background() == dark  # remembered, though the system says light
    page.goto(live_url + "/support/")
    assert background() == dark
    page.get_by_role("button", name=re.compile("Colour theme")).click()  # dark -> light
    assert background() == light
    page.get_by_role("button", name=re.compile("Colour theme")).click()  # light -> the system
    page.emulate_media(color_scheme="dark")
    assert background() == dark  # follows the system again
    page.context.close()
