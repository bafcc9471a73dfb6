"""Answers that stream to every socket watching an object, independent of any one socket.

An answer runs in a task of its own (`start`), kept in this process's registry until it ends;
closing the tab or losing the connection does not stop it. Each piece of it is sent to a Channels
group, so every tab on the object sees it (across workers with channels-redis). A socket that
joins late gets a snapshot of the text so far, and deltas carry their offset in the text, so a
client can tell a gap and wait for the next snapshot (sent every SNAPSHOT_SECONDS).

Stopping: `stop(key)` cancels a local run at once; for a run on another worker, a stop request is
left in Redis, which the run checks every STOP_POLL_SECONDS.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from .redis import async_client

logger = logging.getLogger(__name__)

SNAPSHOT_SECONDS = 1.0
STOP_POLL_SECONDS = 0.5


@dataclass
class Run:
    key: str  # what the run is about, e.g. "chat-12"
    group: str
    message_id: int
    parts: list[str] = field(default_factory=list)
    length: int = 0
    task: asyncio.Task | None = None
    stop_requested: bool = False
    last_snapshot: float = 0.0
    first_output: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def send(self, frame: dict) -> None:
        if frame["type"] != "answer_started" and not self.first_output.done():
            self.first_output.set_result(frame)
        await group_send(self.group, frame)

    async def wait_for_output(self, timeout: float) -> dict | None:
        """The first frame after the start (a token, a refusal, the end), or None on timeout."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.first_output), timeout)
        except TimeoutError:
            return None

    async def delta(self, text: str) -> None:
        offset = self.length
        self.parts.append(text)
        self.length += len(text)
        await self.send(
            {"type": "delta", "message_id": self.message_id, "offset": offset, "text": text}
        )

    async def snapshot(self) -> None:
        await self.send({"type": "snapshot", "message_id": self.message_id, "text": self.text})


_runs: dict[str, Run] = {}


def running(key: str) -> Run | None:
    return _runs.get(key)


def start(run: Run, produce: Callable[[Run], Awaitable[None]]) -> Run:
    """Run `produce(run)` in its own task; the registry holds it until it ends."""

    async def main():
        # Without Redis there is one process, so no stop request can come from elsewhere.
        watcher = asyncio.create_task(_watch_for_stop(run)) if settings.REDIS_URL else None
        try:
            await produce(run)
        except Exception:
            logger.exception("stream %s failed", run.key)
        finally:
            _runs.pop(run.key, None)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(Exception):
                    await _clear_stop_request(run.key)

    _runs[run.key] = run
    run.task = asyncio.create_task(main(), name=f"stream {run.key}")
    return run


async def stop(key: str) -> None:
    run = _runs.get(key)
    if run is not None and run.task is not None:
        run.stop_requested = True
        run.task.cancel()
        return
    # The run may be on another worker: leave it a note in Redis.
    if not settings.REDIS_URL:
        return
    try:
        await async_client(settings.REDIS_URL).set(_stop_key(key), 1, ex=60)
    except Exception:
        logger.warning("could not leave a stop request for %s", key)


async def _watch_for_stop(run: Run) -> None:
    while True:
        await asyncio.sleep(STOP_POLL_SECONDS)
        try:
            requested = await async_client(settings.REDIS_URL).get(_stop_key(run.key))
        except Exception:
            continue
        if requested and run.task is not None:
            run.stop_requested = True
            run.task.cancel()
            return


async def _clear_stop_request(key: str) -> None:
    await async_client(settings.REDIS_URL).delete(_stop_key(key))


def _stop_key(key: str) -> str:
    return f"iridium:stream:stop:{key}"


# Sockets of this process, by group. Without Redis there is one process: frames go straight to
# its sockets, without the in-memory channel layer's copy, queue and dispatch for each of them.
_local_sockets: dict[str, set] = {}


def subscribe(group: str, consumer) -> None:
    _local_sockets.setdefault(group, set()).add(consumer)


def unsubscribe(group: str, consumer) -> None:
    sockets = _local_sockets.get(group)
    if sockets is not None:
        sockets.discard(consumer)
        if not sockets:
            del _local_sockets[group]


def single_process() -> bool:
    return isinstance(get_channel_layer(), InMemoryChannelLayer)


async def group_send(group: str, frame: dict) -> None:
    if not single_process():
        await get_channel_layer().group_send(group, {"type": "stream.frame", "frame": frame})
        return
    for consumer in list(_local_sockets.get(group, ())):
        try:
            await consumer.send_json(frame)
        except Exception:  # a socket that has gone: it unsubscribes when it disconnects
            logger.debug("could not send a frame to a closed socket", exc_info=True)
