"""Answers that run independent of any socket: each in a task of its own, held in this
process's registry until it ends, so closing the tab or losing the connection does not stop it.

A run's key names its object ("chat-12") and is also the Channels group of the sockets watching
it. Every piece of the answer goes to them (iridium.live.fanout). A socket that joins late gets
a snapshot of the text so far, and deltas carry their offset in the text, so a page can tell a
gap and wait for the next snapshot (sent every SNAPSHOT_SECONDS).

Stopping: `stop(key, answer_ids)` cancels a local run at once; for an answer being written by
another worker, a stop request for that answer is left in Redis, which its run checks every
STOP_POLL_SECONDS. A request names the answer, so it can never stop a later one.
"""

import asyncio
import contextlib
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import SyncToAsync
from django.conf import settings

from iridium.infra.errors import DomainError
from iridium.infra.loops import PerLoop
from iridium.infra.redis import async_client

from . import fanout, protocol

logger = logging.getLogger(__name__)

SNAPSHOT_SECONDS = 1.0
STOP_POLL_SECONDS = 0.5
STOP_REQUEST_SECONDS = 60


@dataclass
class Run:
    key: str  # what the run is about, e.g. "chat-12"; also the group of its sockets
    message_id: int
    parts: list[str] = field(default_factory=list)
    length: int = 0
    task: asyncio.Task | None = None
    stop_requested: bool = False
    last_snapshot: float = 0.0
    # Set when the service refused the answer before it began (a limit, a budget, the switch).
    refusal: Exception | None = None
    first_output: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def send(self, frame: dict) -> None:
        if frame["type"] != protocol.ANSWER_STARTED and not self.first_output.done():
            self.first_output.set_result(None)
        await fanout.group_send(self.key, frame, self.first_output.get_loop())

    async def started(self, timeout: float) -> None:
        """Wait until the answer has produced something (a token, a tool, its end) or `timeout`
        passed; raise the refusal if the service refused it."""
        # `asyncio.wait` never cancels what it waits for, and wakes this task one turn of the
        # loop after the answer's first output (wait_for around a shield takes three).
        await asyncio.wait([self.first_output], timeout=timeout)
        if self.refusal is not None:
            raise self.refusal

    async def delta(self, text: str) -> None:
        offset = self.length
        self.parts.append(text)
        self.length += len(text)
        await self.send(protocol.delta(self.message_id, offset, text))

    async def snapshot(self) -> None:
        await self.send(protocol.snapshot(self.message_id, self.text))


_runs: dict[str, Run] = {}
# The event loops (servers) that are shutting down: no answer starts in them any more.
_draining: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()

RESTARTING = "The server is restarting. Send your message again in a moment."


class ShuttingDown(DomainError):
    code = "restarting"
    http_status = 503


def running(key: str) -> Run | None:
    return _runs.get(key)


def start(run: Run, produce: Callable[[Run], Awaitable[None]]) -> Run:
    """Run `produce(run)` in its own task; the registry holds it until it ends."""
    refuse_if_draining()

    async def main():
        # Without Redis there is one process, so no stop request can come from elsewhere.
        watching = settings.REDIS_URL and _stop_requests.get()
        if watching:
            watching.watch(run)
        try:
            await produce(run)
        except Exception:
            logger.exception("stream %s failed", run.key)
        finally:
            _runs.pop(run.key, None)
            if watching:
                watching.forget(run)
            # A stop request this run heard of is taken away; one it never heard of (left as it
            # ended) names this answer only and expires by itself: no round trip to Redis at
            # the end of every answer for it.
            if watching and run.stop_requested:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(settings.REDIS_TIMEOUT):
                        await async_client(settings.REDIS_URL).delete(
                            _stop_key(run.key, run.message_id)
                        )

    _runs[run.key] = run
    run.task = asyncio.create_task(main(), name=f"stream {run.key}", context=_outside_request())
    return run


def _outside_request() -> contextvars.Context:
    """The caller's context without the thread of the HTTP request (if any) that starts a run.

    Django runs each request's synchronous work (the ORM's included) in a thread of the
    request's own, which lives as long as the request. A run outlives the request that started
    it (generate, a new ticket): in the request's context, its database work after the request
    would go to a fresh thread per request, each keeping a connection that is never returned.
    Outside it, the run's database work goes where a websocket's does (asgiref's one thread for
    synchronous work in the process), on the one connection that thread keeps."""
    context = contextvars.copy_context()
    context.run(SyncToAsync.thread_sensitive_context.set, None)
    return context


async def drain(grace: float) -> tuple[int, int]:
    """The worker stops: no answer starts any more; those being written get `grace` seconds to
    finish, then are stopped (each saves what it has, and its calls are recorded). Returns how
    many finished and how many were stopped."""
    loop = asyncio.get_running_loop()
    _draining.add(loop)
    tasks = [
        run.task for run in _runs.values() if run.task is not None and run.task.get_loop() is loop
    ]
    if not tasks:
        return 0, 0
    logger.info("waiting up to %.0f s for %d answer(s) to finish", grace, len(tasks))
    _, unfinished = await asyncio.wait(tasks, timeout=grace)
    for task in unfinished:
        task.cancel()
    if unfinished:
        logger.warning("stopped %d answer(s) that did not finish in time", len(unfinished))
        await asyncio.wait(unfinished, timeout=10)
    return len(tasks) - len(unfinished), len(unfinished)


def draining() -> bool:
    return asyncio.get_running_loop() in _draining


def refuse_if_draining() -> None:
    """Called before anything of a new answer is saved: while this worker stops, no answer
    starts (ShuttingDown, "restarting"), and nothing is left half begun."""
    if draining():
        raise ShuttingDown(RESTARTING)


async def stop(key: str, answer_ids: list[int]) -> None:
    """Stop the answer being written under `key`: here, or (by its id among `answer_ids`, the
    object's answers being written) on another worker."""
    run = _runs.get(key)
    if run is not None and run.task is not None:
        run.stop_requested = True
        run.task.cancel()
        return
    if not settings.REDIS_URL or not answer_ids:
        return
    try:
        async with asyncio.timeout(settings.REDIS_TIMEOUT):
            pipeline = async_client(settings.REDIS_URL).pipeline(transaction=False)
            for answer_id in answer_ids:
                pipeline.set(_stop_key(key, answer_id), 1, ex=STOP_REQUEST_SECONDS)
            await pipeline.execute()
    except Exception:
        logger.warning("could not leave a stop request for %s", key)


class _StopRequests:
    """Stop requests left in Redis for this worker's runs (by a Stop pressed on another
    worker), read for all of them with one MGET every STOP_POLL_SECONDS."""

    def __init__(self):
        self.runs: dict[str, Run] = {}
        self.polling: asyncio.Task | None = None

    def watch(self, run: Run) -> None:
        self.runs[run.key] = run
        if self.polling is None or self.polling.done():
            self.polling = asyncio.create_task(self._poll(), name="stream stop requests")

    def forget(self, run: Run) -> None:
        if self.runs.get(run.key) is run:
            del self.runs[run.key]

    async def _poll(self) -> None:
        while self.runs:
            await asyncio.sleep(STOP_POLL_SECONDS)
            watched = list(self.runs.values())
            if not watched:
                return
            try:
                async with asyncio.timeout(settings.REDIS_TIMEOUT):
                    requested = await async_client(settings.REDIS_URL).mget(
                        [_stop_key(run.key, run.message_id) for run in watched]
                    )
            except Exception:
                continue  # Redis unreachable: Stop works on this worker's own sockets meanwhile
            for run, value in zip(watched, requested, strict=True):
                if value and self.runs.get(run.key) is run and run.task is not None:
                    self.forget(run)
                    run.stop_requested = True
                    run.task.cancel()


_stop_requests = PerLoop(_StopRequests)


def _stop_key(key: str, answer_id: int) -> str:
    return f"iridium:stream:stop:{key}:{answer_id}"
