"""The loopback stand-ins for paid services, in a process of their own so that they do not
share a CPU core's time with what is measured: the demo provider and a PostHog capture server.

Prints `ready <provider port> <posthog port>` when both listen.
"""

import asyncio
import os
import sys

import uvicorn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iridium.settings")


async def main(token_delay: float):
    from iridium.demo_provider import DemoProvider
    from iridium.infra.serving import settle_garbage_collector, start
    from tests.fakes.posthog_server import FakePostHog

    settle_garbage_collector()
    servers = []
    for app in (DemoProvider(token_delay=token_delay), FakePostHog()):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        server, task = await start(config)
        servers.append((server, task))
    ports = [s.servers[0].sockets[0].getsockname()[1] for s, _ in servers]
    print("ready", *ports, flush=True)
    await asyncio.gather(*(task for _, task in servers))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
