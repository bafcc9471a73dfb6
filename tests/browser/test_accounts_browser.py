import re

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import log_in

pytestmark = pytest.mark.browser


def test_sign_up_log_out_log_in_and_see_the_plan(page, live_url):
    page.goto(live_url + "/")
    page.get_by_role("link", name="Sign up").first.click()

    page.get_by_label("Username").fill("petra")
    page.get_by_label("Password", exact=True).fill("violet-Harbor-42")
    page.get_by_label("Password confirmation").fill("violet-Harbor-42")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_test_id("plan-badge")).to_have_text("Free plan")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, petra")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in").first).to_be_visible()

    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Username").fill("petra")
    page.get_by_label("Password").fill("violet-Harbor-42")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("plan-badge")).to_have_text("Free plan")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Chat")


def test_weak_password_is_explained_in_the_page(page, live_url):
    page.goto(live_url + "/accounts/signup/")
    page.get_by_label("Username").fill("petra")
    page.get_by_label("Password", exact=True).fill("12345678")
    page.get_by_label("Password confirmation").fill("12345678")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".errorlist")).to_contain_text(re.compile("too common|entirely numeric"))
    expect(page.get_by_label("Username")).to_have_value("petra")


def test_layout_fits_a_phone_screen(live_url, user, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, color_scheme="dark")
    page = context.new_page()
    log_in(page, live_url, user)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 375
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"  # the dark theme follows the system setting
    context.close()
