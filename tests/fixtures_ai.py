"""The loopback stand-ins for paid services, and settings that point the AI service at them.

The demo provider and the PostHog capture server are real HTTP servers (uvicorn in a thread);
the app reaches them through the real `openai` and `posthog` SDKs.
"""

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections

from iridium.ai import posthog
from iridium.ai.callers import forget_callers
from iridium.ai.flags import flag_store
from iridium.ai.recorder import recorder
from iridium.demo_provider import DemoProvider
from iridium.infra.heartbeat import close_heartbeat_connection
from iridium.live.progress import close_progress_connection
from tests.fakes.posthog_server import FakePostHog
from tests.live import LiveASGIServer


def _serve(app):
    server = LiveASGIServer(app)
    server.start()
    server.app = app
    return server


@pytest.fixture(scope="session")
def demo_provider_server():
    server = _serve(DemoProvider())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def posthog_server():
    server = _serve(FakePostHog())
    yield server
    server.stop()


@pytest.fixture
def fake_posthog(posthog_server):
    posthog_server.app.clear()
    return posthog_server.app


@pytest.fixture
def ai_settings(settings, transactional_db, plans, demo_provider_server, posthog_server):
    """Point the AI service at the demo provider and PostHog at the capture server.

    AI tests use `transactional_db`: the recorder writes rows from its own thread and connection.
    """
    posthog_server.app.clear()
    posthog_server.app.flags = {}
    flag_store.forget()
    forget_callers()
    settings.AI_BASE_URL = demo_provider_server.url + "/v1"
    settings.AI_USES_DEMO_PROVIDER = True
    settings.AI_READ_TIMEOUT = 2.0
    settings.AI_MAX_RETRIES = 2
    settings.POSTHOG_API_KEY = "phc_test"
    settings.POSTHOG_HOST = posthog_server.url
    yield settings
    recorder.flush()
    posthog.reset()


@pytest.fixture(autouse=True)
def _close_thread_connections():
    """Close the connections that async code opened in asgiref's thread for sync work, so that
    no test leaves one behind (it would keep the test database from being dropped)."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(scope="session", autouse=True)
def _stop_recorder(django_db_setup, django_db_blocker):
    """Stop the recorder's thread and close the progress writer's and the heartbeat's
    connections before the test database goes."""
    yield
    with django_db_blocker.unblock():
        recorder.stop()
        close_progress_connection()
        close_heartbeat_connection()
