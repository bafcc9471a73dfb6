"""The application's ASGI lifespan: a server shutting down closes the AI provider's connections."""

from iridium import ai
from iridium.ai import provider
from iridium.asgi import application


async def run_lifespan():
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message["type"])

    await application({"type": "lifespan"}, receive, send)
    return sent


async def test_shutting_down_closes_the_provider_connections(ai_settings, user):
    completion = await ai.complete(
        user=user, feature="chat", messages=[{"role": "user", "content": "hi"}], trace_id="t-1"
    )
    assert completion.text
    client = provider.client()
    assert not client.is_closed()

    assert await run_lifespan() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert client.is_closed()
    # A call after that (a test, a late task) gets a new client rather than a closed one.
    assert provider.client() is not client


async def test_shutting_down_without_a_client_is_fine(ai_settings):
    assert await run_lifespan() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
