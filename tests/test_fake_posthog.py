"""The fake PostHog server understands what the real posthog client sends, over real HTTP."""

import time

import pytest
from posthog import Posthog

from tests.fakes.posthog_server import FakePostHog, SilentServer, refused_url
from tests.live import LiveASGIServer


@pytest.fixture(scope="module")
def posthog_server():
    fake = FakePostHog()
    server = LiveASGIServer(fake)
    server.start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def fake(posthog_server):
    fake, _ = posthog_server
    fake.clear()
    fake.flags = {}
    return fake


@pytest.fixture
def make_client(posthog_server):
    clients = []

    def make(**options):
        options = {"host": posthog_server[1], "sync_mode": False, "flush_at": 1, **options}
        client = Posthog(project_api_key="phc_test", **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_capture_with_groups_is_recorded(fake, make_client, compressed):
    client = make_client(gzip=compressed)

    client.capture(
        "$ai_generation",
        distinct_id="u1",
        properties={"$ai_model": "gpt-4o-mini", "$ai_input_tokens": 12},
        groups={"company": "acme"},
    )

    [event] = fake.wait_for(1, "$ai_generation")
    assert event["distinct_id"] == "u1"
    assert event["properties"]["$ai_model"] == "gpt-4o-mini"
    assert event["properties"]["$ai_input_tokens"] == 12
    assert event["properties"]["$groups"] == {"company": "acme"}
    assert event["api_key"] == "phc_test"
    assert event["path"] == "/batch/"


def test_wait_for_reports_what_arrived(fake, make_client):
    make_client().capture("something_else", distinct_id="u1")
    fake.wait_for(1, "something_else")

    with pytest.raises(AssertionError, match="something_else"):
        fake.wait_for(1, "never_sent", timeout=0.2)
    assert fake.events("never_sent") == []


def test_remote_flag_evaluation(fake, make_client):
    fake.flags = {"new-model": "gpt-4.1", "beta": True, "off": False}
    client = make_client()

    flags = client.evaluate_flags("u1", flag_keys=["new-model", "beta", "off"])

    assert flags.get_flag("new-model") == "gpt-4.1"
    assert flags.is_enabled("beta") is True
    assert flags.is_enabled("off") is False
    assert len(fake.flag_requests) == 1
    assert fake.flag_requests[0]["distinct_id"] == "u1"
    assert fake.definition_requests == []


def test_local_flag_evaluation_needs_no_flags_request(fake, make_client):
    fake.flags = {"new-model": "gpt-4.1", "beta": True, "off": False}
    client = make_client(secret_key="phs_test")

    flags = client.evaluate_flags("u1", flag_keys=["new-model", "beta", "off"])

    assert flags.get_flag("new-model") == "gpt-4.1"
    assert flags.is_enabled("beta") is True
    assert flags.is_enabled("off") is False
    assert fake.flag_requests == []
    assert fake.definition_requests[0]["authorization"] == "Bearer phs_test"
    assert fake.definition_requests[0]["query"]["token"] == ["phc_test"]


@pytest.mark.parametrize("unreachable", ["refused", "silent"])
def test_unreachable_posthog_never_raises(unreachable):
    with SilentServer() as silent:
        host = refused_url() if unreachable == "refused" else silent.url
        failures = []
        client = Posthog(
            project_api_key="phc_test",
            host=host,
            sync_mode=False,
            flush_at=1,
            timeout=0.3,
            max_retries=0,
            on_error=lambda error, batch: failures.append(error),
        )
        started = time.monotonic()

        client.capture("lost", distinct_id="u1")
        client.flush(timeout_seconds=2)
        client.shutdown()

        assert time.monotonic() - started < 5
        assert failures, "the send should have failed and been reported to on_error"
        if unreachable == "silent":
            assert silent.connections, "the client should have reached the silent server"
