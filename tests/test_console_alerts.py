"""A fired alert links to the console's view of what fired."""

from decimal import Decimal

import pytest
from django.urls import reverse

from iridium.analytics.filters import Filters
from iridium.analytics.models import AlertRule, FiredAlert
from tests import factories


@pytest.mark.parametrize(
    ("window", "period"), [(60, "24h"), (1440, "24h"), (3 * 1440, "7d"), (20 * 1440, "30d"),
                           (60 * 1440, "90d")]
)  # fmt: skip
def test_a_fired_alert_opens_the_console_filtered_to_what_fired(
    client, staff, plans, organization, window, period
):
    factories.create_generation(feature="customer-support", is_error=True, plan=plans["pro"],
                                organization=organization)  # fmt: skip
    rule = AlertRule.objects.create(
        name="Support errors", kind=AlertRule.Kind.ERROR_RATE, threshold=Decimal(5),
        window_minutes=window, feature="customer-support", plan=plans["pro"],
        organization=organization,
    )  # fmt: skip
    alert = FiredAlert.objects.create(rule=rule, value=Decimal(12), message="12% errors")
    client.force_login(staff)
    listing = client.get(reverse("admin:analytics_firedalert_changelist")).content.decode()
    url = rule.console_url()
    assert f'href="{url.replace("&", "&amp;")}">In the console<' in listing
    page = client.get(url)
    assert page.status_code == 200 and alert.rule == rule
    assert page.context["period"] == period
    assert page.context["form"].filters == Filters(
        feature="customer-support", plan=plans["pro"].pk, organization=organization.pk,
        errors=True,
    )  # fmt: skip
