import pytest
from playwright.sync_api import expect

from tests import factories
from tests.helpers.browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def agent(plans):
    return factories.support_agent("dana")


def test_customer_files_a_ticket_and_an_agent_resolves_it(
    live_url, ai_settings, user, agent, browser
):
    customer = browser.new_context().new_page()
    customer.set_default_timeout(10_000)
    log_in(customer, live_url, user)
    customer.get_by_role("navigation", name="Main").get_by_role("link", name="Support").click()
    customer.get_by_label("Title").fill("Cannot log in")
    customer.get_by_label("Description").fill("I get an error [[demo:slow=0.03]] when I log in.")
    customer.get_by_label("Priority").select_option("high")
    customer.get_by_label("Category").select_option("account")
    customer.get_by_role("button", name="File ticket").click()

    expect(customer.get_by_role("heading", level=1)).to_contain_text("Cannot log in")
    answer = customer.locator(".message.assistant").last
    expect(answer.locator(".answer-body.streaming")).to_contain_text("Demo answer")  # streaming in
    expect(answer.locator(".usage")).to_contain_text("gpt-4o-mini")  # and finished

    staff = browser.new_context().new_page()
    staff.set_default_timeout(10_000)
    log_in(staff, live_url, agent)
    staff.goto(live_url + "/support/queue/")
    staff.get_by_role("link", name="Cannot log in").click()
    staff.get_by_label("Assigned agent").select_option(label="dana (me)")
    staff.get_by_role("button", name="Assign").click()
    expect(staff.locator(".ticket-meta")).to_contain_text("assigned to dana")
    staff.get_by_label("Reply to the customer").fill("I have reset your session; try again.")
    staff.get_by_role("button", name="Reply").click()
    expect(staff.locator(".message.agent")).to_contain_text("I have reset your session")

    expect(customer.locator(".message.agent")).to_contain_text("I have reset your session")

    staff.get_by_label("Status").select_option("resolved")
    staff.get_by_role("button", name="Set status").click()
    expect(staff.get_by_test_id("ticket-status")).to_have_text("Resolved")
    customer.reload()
    expect(customer.get_by_test_id("ticket-status")).to_have_text("Resolved")
