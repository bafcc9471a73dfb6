"""Support as the customer and staff see it: the hand-over is information, not an error;
status changes reach the customer's open page; statuses have their own colours."""

import pytest
from playwright.sync_api import expect

from support import answers
from support.models import Ticket
from tests import factories
from tests.helpers.browser import log_in, new_page

pytestmark = pytest.mark.browser


@pytest.fixture
def agent(plans):
    return factories.support_agent("dana")


# Rows are made by fixtures, before the browser opens (see tests/live.py's `browser`).
@pytest.fixture
def ticket(user):
    return factories.ticket(user, title="Cannot log in")


@pytest.fixture
def one_ticket_per_status(user):
    for status in Ticket.Status.values:
        made = factories.ticket(user, title=f"A {status} ticket")
        Ticket.objects.filter(pk=made.pk).update(status=status)


def colour(locator, prop):
    return locator.evaluate(f"(e) => getComputedStyle(e).{prop}")


def test_hand_over_is_a_notice_and_status_changes_arrive_live(
    live_url, ai_settings, user, agent, ticket, browser
):
    customer = new_page(browser)
    log_in(customer, live_url, user)
    customer.goto(f"{live_url}/support/tickets/{ticket.pk}/")
    expect(customer.locator(".message.assistant .usage")).to_be_visible(timeout=15_000)
    customer.get_by_role("button", name="Ask for a person").click()

    notice = customer.get_by_role("status").filter(has_text=answers.HANDED_OVER)
    expect(notice).to_be_visible()
    expect(customer.get_by_role("alert")).to_have_count(0)
    danger = customer.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--danger')"
    )
    error_red = customer.evaluate(
        """(c) => { const e = document.createElement('i'); e.style.color = c;
                   document.body.append(e); const v = getComputedStyle(e).color; e.remove();
                   return v; }""",
        danger,
    )
    assert colour(notice, "borderTopColor") != error_red
    badge = customer.get_by_test_id("ticket-status")
    expect(badge).to_have_text("Open")
    open_colour = colour(badge, "color")

    staff = new_page(browser)
    log_in(staff, live_url, agent)
    staff.goto(f"{live_url}/support/queue/")
    expect(staff.locator("tr", has_text="Cannot log in")).to_contain_text("needs a person")
    staff.goto(f"{live_url}/support/tickets/{ticket.pk}/")
    staff.get_by_label("Status").select_option("pending")
    staff.get_by_role("button", name="Set status").click()
    expect(staff.get_by_test_id("ticket-status")).to_have_text("Pending")

    expect(badge).to_have_text("Pending")  # on the customer's page, without a reload
    expect(customer.get_by_role("status").filter(has_text="now pending")).to_be_visible()
    assert colour(badge, "color") != open_colour
    expect(customer.get_by_label("Message")).to_be_editable()  # still takes messages

    staff.get_by_label("Status").select_option("resolved")
    staff.get_by_role("button", name="Set status").click()
    expect(badge).to_have_text("Resolved")
    expect(customer.get_by_test_id("ticket-finished")).to_contain_text("resolved")
    expect(customer.get_by_role("button", name="Reopen ticket")).to_be_visible()
    expect(customer.get_by_label("Message")).to_have_count(0)  # a finished ticket takes none
    staff.goto(f"{live_url}/support/queue/")
    expect(staff.locator("tr", has_text="Cannot log in")).not_to_contain_text("needs a person")
    expect(staff.locator("tr", has_text="Cannot log in")).to_contain_text("Resolved")
    customer.context.close()
    staff.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_each_status_has_its_own_colour(
    live_url, ai_settings, user, one_ticket_per_status, browser, scheme
):
    page = new_page(browser, scheme=scheme)
    log_in(page, live_url, user)
    page.goto(live_url + "/support/")
    badges = page.locator("#main .badge[class*='status-']")
    expect(badges).to_have_count(len(Ticket.Status.values))
    looks = {
        (colour(badges.nth(i), "color"), colour(badges.nth(i), "backgroundColor"))
        for i in range(badges.count())
    }
    assert len({text for text, _ in looks}) == len(Ticket.Status.values), looks
    assert len({background for _, background in looks}) == len(Ticket.Status.values), looks
    page.context.close()
