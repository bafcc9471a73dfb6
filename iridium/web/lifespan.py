"""The ASGI lifespan of the application: what a server does when it starts and stops.

On shutdown the AI provider's connections are closed. (Queued generation rows and PostHog events
are written when the process exits: see iridium.ai.recorder and iridium.ai.posthog.)
"""

import logging

from iridium.ai import provider
from iridium.infra.serving import dump_tasks_on_signal

logger = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            dump_tasks_on_signal()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await provider.close()
            except Exception:
                logger.exception("could not close the AI provider's connections")
            await send({"type": "lifespan.shutdown.complete"})
            return
