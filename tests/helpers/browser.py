"""Steps that browser tests share."""

from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD


def log_in(page, live_url, user, password=DEFAULT_PASSWORD):
    """Log `user` in through the log-in page; returns once the layout shows their plan."""
    page.goto(live_url + "/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("plan-badge")).to_be_visible()
