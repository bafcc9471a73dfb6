import pytest
from django.core.checks import run_checks
from django.test import override_settings

from iridium.infra import checks

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

POSTGRES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "iridium"}}


def check_ids():
    return {message.id for message in run_checks(include_deployment_checks=False)}


@override_settings(DEBUG=False, POSTHOG_API_KEY="")
def test_missing_posthog_key_in_production_warns_that_analytics_are_off():
    messages = checks.check_posthog()
    assert [m.id for m in messages] == [checks.W_POSTHOG_KEY]
    assert "analytics are off" in messages[0].msg
    assert "POSTHOG_API_KEY" in messages[0].hint
    assert checks.W_POSTHOG_KEY in check_ids()


@override_settings(DEBUG=True, POSTHOG_API_KEY="")
def test_missing_posthog_key_in_development_is_quiet():
    assert checks.check_posthog() == []


@override_settings(POSTHOG_API_KEY="phc_test", POSTHOG_HOST="eu.i.posthog.com")
def test_posthog_host_that_is_not_a_url_warns():
    messages = checks.check_posthog()
    assert [m.id for m in messages] == [checks.W_POSTHOG_HOST]
    assert "https://eu.i.posthog.com" in messages[0].hint


@override_settings(POSTHOG_API_KEY="phc_test", POSTHOG_HOST="https://eu.i.posthog.com")
def test_good_posthog_settings_pass():
    assert checks.check_posthog() == []


@override_settings(REDIS_URL="redis://:hunter2@127.0.0.1:1/0", REDIS_TIMEOUT=0.5)
def test_unreachable_redis_warns_without_showing_the_password():
    messages = checks.check_redis()
    assert [m.id for m in messages] == [checks.W_REDIS_UNREACHABLE]
    assert "unreachable" in messages[0].msg
    assert "hunter2" not in messages[0].msg
    assert "REDIS_URL" in messages[0].hint


@override_settings(REDIS_URL="")
def test_no_redis_configured_is_fine():
    assert checks.check_redis() == []


@override_settings(DEBUG=True, DATABASES=POSTGRES)
def test_debug_with_a_real_database_warns():
    messages = checks.check_debug_with_real_database()
    assert [m.id for m in messages] == [checks.W_DEBUG_REAL_DATABASE]
    assert "DEBUG=false" in messages[0].hint


@override_settings(DEBUG=False, DATABASES=POSTGRES)
def test_production_database_without_debug_is_fine():
    assert checks.check_debug_with_real_database() == []
