import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest
from django.test import override_settings

from iridium.accounts.models import Organization, User
from iridium.web.demo import DEMO_PASSWORD, DEMO_USERS
from support.models import Article

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_healthz_reports_database_and_cache(client, plans):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "unreachable": [],
        "database": {"ok": True},
        "cache": {"ok": True},
    }


def test_healthz_names_an_unreachable_redis_with_503(client, plans):
    with override_settings(CACHES=UNREACHABLE_REDIS):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["unreachable"] == ["cache"]
    assert body["database"] == {"ok": True}
    # Why is for the log, not for anybody who asks: no address, port or exception text.
    assert body["cache"] == {"ok": False}
    assert "127.0.0.1" not in response.content.decode()


@override_settings(DEBUG=True)
def test_seed_demo_is_idempotent_and_its_logins_work(client, plans):
    call_command("seed_demo")
    counts = (User.objects.count(), Organization.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Organization.objects.count()) == counts == (6, 1)
    dana = User.objects.get(username="dana")
    assert dana.is_staff and not dana.is_superuser and dana.has_perm("support.add_article")
    assert Article.objects.filter(published=True).count() == 3
    for username, plan, _, _ in DEMO_USERS:
        user = User.objects.get(username=username)
        assert user.effective_plan.slug == plan
        assert client.login(request=HttpRequest(), username=username, password=DEMO_PASSWORD)
    erin = User.objects.get(username="erin")  # the console's figures, not people's words
    assert erin.has_perm("analytics.view_console") and not erin.has_perm(
        "analytics.view_ai_content"
    )
    assert not erin.is_staff
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert User.objects.get(username="carol").organization.slug == "acme"


@override_settings(DEBUG=False)
def test_seed_demo_refuses_to_run_in_production(plans):
    with pytest.raises(CommandError, match="public passwords"):
        call_command("seed_demo")
    assert not User.objects.exists()
