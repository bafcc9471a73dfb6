"""The ASGI lifespan of the application: what a worker does when it starts and stops.

At start: what the first answer would otherwise load (the AI provider's client and its HTTP
modules, the catalogue of prices: most of a second) is loaded; calls left in flight by a worker
that died are completed (and again now and then, for workers that die while this one runs);
`kill -USR1` dumps the worker's tasks.

At stop (SIGTERM): uvicorn first stops taking connections and closes the sockets; then no
answer may start, the answers being written get AI_SHUTDOWN_GRACE_SECONDS to finish and are
stopped after that (each saves what it has), and every queued generation row and PostHog event
is delivered before the process exits. (uvicorn re-raises the SIGTERM it caught once it has
shut down, so exit handlers would not run: this is the last moment.)
"""

import asyncio
import logging

from django.conf import settings

from iridium.ai import posthog, pricing, provider
from iridium.ai.recorder import recorder
from iridium.ai.recovery import recover_interrupted_calls, recovery_seconds
from iridium.infra.serving import dump_tasks_on_signal
from iridium.live import runs

logger = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    recovering = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            dump_tasks_on_signal()
            provider.client()  # this loop's, made now
            await asyncio.to_thread(pricing.load_catalogue)
            recovering = asyncio.create_task(_recover_now_and_then(), name="call recovery")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if recovering is not None:
                recovering.cancel()
            await shut_down()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def shut_down() -> None:
    finished, stopped = await runs.drain(settings.AI_SHUTDOWN_GRACE_SECONDS)
    if finished or stopped:
        logger.info("answers in flight at shutdown: %d finished, %d stopped", finished, stopped)
    for step, action in (
        ("close the AI provider's connections", provider.close()),
        ("write the queued AI calls", asyncio.to_thread(recorder.stop)),
        ("deliver the queued PostHog events", asyncio.to_thread(posthog.flush)),
    ):
        try:
            await action
        except Exception:
            logger.exception("could not %s", step)


async def _recover_now_and_then() -> None:
    while True:
        try:
            await recover_interrupted_calls()
        except Exception:
            logger.exception("could not complete the calls of workers that stopped")
        await asyncio.sleep(recovery_seconds())
