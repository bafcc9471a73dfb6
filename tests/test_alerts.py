"""Alert rules: thresholds, the minimum-calls guard, cool-downs, email and webhook delivery."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from iridium.analytics import alerts
from iridium.analytics.models import AlertRule, FiredAlert
from tests import factories
from tests.live import LiveASGIServer


class Webhook:
    """A loopback Slack-compatible webhook that records posts and answers `status`."""

    def __init__(self, status=200):
        self.status = status
        self.posts = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.posts.append(json.loads(body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def webhook():
    app = Webhook()
    server = LiveASGIServer(app)
    server.start()
    app.url = server.url + "/hooks/T000/B000"
    yield app
    server.stop()


def calls(count, *, minutes_ago=5, cost="0.01", latency=100.0, error=False, **extra):
    """`count` calls, `minutes_ago`, of `cost` (USD) and `latency` (ms) each."""
    row = {
        "created_at": timezone.now() - timedelta(minutes=minutes_ago),
        "trace_id": "t",
        "latency_ms": latency,
        "total_cost_usd": Decimal(cost),
        "is_error": error,
        **extra,
    }
    factories.create_generations([row] * count)


def rule(kind, threshold, **fields):
    fields.setdefault("name", f"{kind} rule")
    return AlertRule.objects.create(kind=kind, threshold=Decimal(str(threshold)), **fields)


def test_spend_over_the_threshold_fires_and_is_delivered(db, webhook):
    calls(30)  # $0.30
    spend = rule("spend", "0.25", emails="ops@example.com, cfo@example.com",
                 webhook_url=webhook.url)  # fmt: skip
    [alert] = alerts.evaluate_all()
    assert alert.rule == spend and alert.value == Decimal("0.30")
    assert "$0.3000" in alert.message
    assert alert.emailed and alert.webhook_delivered and not alert.delivery_error
    [email] = mail.outbox
    assert email.to == ["ops@example.com", "cfo@example.com"] and "spend rule" in email.subject
    assert webhook.posts == [{"text": f"[Iridium alert] spend rule: {alert.message}"}]


def test_under_the_threshold_nothing_fires(db):
    calls(10)
    rule("spend", "0.25")
    assert alerts.evaluate_all() == []


def test_the_minimum_calls_guard(db):
    calls(2, error=True)
    rule("error_rate", 10, min_calls=5)
    assert alerts.evaluate_all() == []  # 100% errors, but only 2 calls
    calls(3)
    [alert] = alerts.evaluate_all()
    assert alert.value == Decimal("40.00")


def test_no_repeat_inside_the_cool_down(db):
    calls(30)
    rule("spend", "0.1", cooldown_minutes=60)
    assert len(alerts.evaluate_all()) == 1
    assert alerts.evaluate_all() == []
    later = timezone.now() + timedelta(minutes=61)
    assert len(alerts.evaluate_all(now=later)) == 1
    assert FiredAlert.objects.count() == 2


def test_latency_rules(db):
    calls(19, latency=1000.0)
    calls(1, latency=9000.0)
    # Average 1.4 s; p95 (continuous) 1000 + 8000 * 0.05 = 1400 ms.
    rule("latency_avg", "1.5", name="average")
    rule("latency_p95", "1.2", name="p95")
    [alert] = alerts.evaluate_all()
    assert alert.rule.name == "p95" and alert.value == Decimal("1.4")
    rule("latency_avg", "1.3", name="lower average")
    [alert] = alerts.evaluate_all()
    assert alert.rule.name == "lower average" and alert.value == Decimal("1.4")


def test_spike_over_the_trailing_average(db):
    for hours_ago in range(2, 24):
        calls(10, minutes_ago=hours_ago * 60)
    calls(50, minutes_ago=10)
    rule("spike", 3, window_minutes=24 * 60)
    [alert] = alerts.evaluate_all()
    assert alert.value > 3 and "50 calls in the last hour" in alert.message


def test_organization_budget_at_80_percent(db, organization):
    organization.monthly_budget_usd = Decimal("1.00")
    organization.save()
    calls(85, organization=organization)  # $0.85
    rule("budget", 80, organization=organization)
    [alert] = alerts.evaluate_all()
    assert alert.value == Decimal("85.00") and "Globex" in alert.message


def test_plan_budget_names_the_users_over_it(db, make_user, plans):
    heavy = make_user("heavy", plan="free")
    make_user("light", plan="free")
    calls(90, user=heavy, plan=plans["free"])  # $0.90 of the $1.00 free budget
    rule("budget", 80, plan=plans["free"])
    [alert] = alerts.evaluate_all()
    assert "heavy" in alert.message and "light" not in alert.message


def test_a_failing_webhook_is_retried_logged_and_does_not_stop_the_run(db, webhook, caplog):
    webhook.status = 500
    calls(30)
    rule("spend", "0.1", webhook_url=webhook.url, name="first")
    AlertRule.objects.create(name="second", kind="error_rate", threshold=0, webhook_url="")
    calls(1, error=True)
    fired = alerts.evaluate_all()
    assert {alert.rule.name for alert in fired} == {"first", "second"}
    failed = next(alert for alert in fired if alert.rule.name == "first")
    assert not failed.webhook_delivered and "500" in failed.delivery_error
    assert len(webhook.posts) == alerts.WEBHOOK_ATTEMPTS
    assert "alert webhook attempt 3 failed" in caplog.text


def test_evaluate_alerts_command(db, capsys):
    calls(30)
    rule("spend", "0.1")
    call_command("evaluate_alerts")
    assert "1 alert(s) fired." in capsys.readouterr().out
