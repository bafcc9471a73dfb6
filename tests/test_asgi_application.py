"""The ASGI application as a server process loads it: its lifespan (shutting down closes the AI
provider's connections) and its garbage collector, settled once everything is loaded."""

import asyncio
import subprocess
import sys

from iridium import ai
from iridium.ai import provider
from iridium.asgi import application
from tests.live import run_lifespan

STARTED_AND_STOPPED = ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_shutting_down_closes_the_provider_connections(ai_settings, user):
    completion = await ai.complete(
        ai.Request(
            user=user, feature="chat", messages=[{"role": "user", "content": "hi"}], trace_id="t-1"
        )
    )
    assert completion.text
    client = provider.client()
    assert not client.is_closed()

    assert await run_lifespan(application) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert client.is_closed()
    # A call after that (a test, a late task) gets a new client rather than a closed one.
    assert provider.client() is not client


def test_the_client_closes_with_its_event_loop(ai_settings, user):
    """`asyncio.run`, `async_to_sync` and pytest shut their loops down: the client's connections
    are closed then, not left to the garbage collector (aiohttp would warn of each)."""

    async def call():
        await ai.complete(ai.Request(user=user, feature="chat", trace_id="t-2",
                                     messages=[{"role": "user", "content": "hi"}]))  # fmt: skip
        return provider.client()

    client = asyncio.run(call())
    assert client.is_closed()


async def test_shutting_down_without_a_client_is_fine(ai_settings):
    assert await run_lifespan(application) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_loading_the_application_settles_the_garbage_collector():
    """In a fresh process, as a server worker loads it."""
    code = (
        "import gc, django; import iridium.asgi; "
        "print(*gc.get_threshold(), gc.get_freeze_count(), len(gc.get_objects()))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    thresholds, frozen, tracked = [int(x) for x in output[:3]], int(output[3]), int(output[4])
    assert thresholds == [5000, 2, 100]
    # Django, the apps and the libraries are out of the collector's reach; little is left in it.
    assert frozen > 50_000 and tracked < frozen / 10
