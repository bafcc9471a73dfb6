"""Answers that stream to every socket watching an object, independent of any one socket.

An answer runs in a task of its own (`start`), kept in this process's registry until it ends;
closing the tab or losing the connection does not stop it. Each piece of it goes to every socket
watching the object (`group_send`): to this worker's sockets directly, and through channels-redis
to the sockets of other workers that are in the object's Channels group, when there are any (so
a worker streaming hundreds of answers to its own sockets does not pay a Redis round trip per
token, and goes on streaming to them while Redis is unreachable). A socket that joins late gets
a snapshot of the text so far, and deltas carry their offset in the text, so a client can tell a
gap and wait for the next snapshot (sent every SNAPSHOT_SECONDS).

Stopping: `stop(key)` cancels a local run at once; for a run on another worker, a stop request is
left in Redis, which the run checks every STOP_POLL_SECONDS.
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import SyncToAsync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from .loops import PerLoop
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
                with contextlib.suppress(Exception):
                    await _clear_stop_request(run.key)

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
            keys = list(self.runs)
            if not keys:
                return
            try:
                requested = await async_client(settings.REDIS_URL).mget(
                    [_stop_key(key) for key in keys]
                )
            except Exception:
                continue  # Redis unreachable: Stop works on this worker's own sockets meanwhile
            for key, value in zip(keys, requested, strict=True):
                run = self.runs.get(key)
                if value and run is not None and run.task is not None:
                    self.forget(run)
                    run.stop_requested = True
                    run.task.cancel()


_stop_requests = PerLoop(_StopRequests)


async def _clear_stop_request(key: str) -> None:
    await async_client(settings.REDIS_URL).delete(_stop_key(key))


def _stop_key(key: str) -> str:
    return f"iridium:stream:stop:{key}"


# Sockets of this process, by group. Frames go straight to them, without a channel layer's
# copy, queue and dispatch for each socket (a process of its own has no other way to get them).
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
    """Send `frame` to every socket watching `group`: this worker's directly, other workers'
    through the channel layer (channels-redis), only when there are any."""
    for consumer in list(_local_sockets.get(group, ())):
        try:
            await consumer.send_json(frame)
        except Exception:  # a socket that has gone: it unsubscribes when it disconnects
            logger.debug("could not send a frame to a closed socket", exc_info=True)
    if not single_process():
        await _send_to_other_workers(group, frame)


# Sockets join the channel layer's group too, so that other workers can reach them; the group's
# members (a sorted set in Redis) are read at most every MEMBERS_SECONDS per group, and frames go
# only to members of other workers. A tab that opens on another worker meanwhile misses at most
# that much, which the snapshot sent every second makes up (deltas carry their offset).
MEMBERS_SECONDS = 0.5
# When Redis cannot be read, other workers are not tried again for this long: the answer streams
# on to this worker's sockets without waiting for Redis at every frame.
RETRY_SECONDS = 5.0


async def _send_to_other_workers(group: str, frame: dict) -> None:
    layer = get_channel_layer()
    for channel in await _memberships.get().others(layer, group):
        try:
            await layer.send(channel, {"type": "stream.frame", "frame": frame})
        except Exception as error:  # Redis gone, or that socket's queue full (ChannelFull)
            _warn_now_and_then(f"could not relay a frame to another worker: {error!r}")


class _Membership:
    """The channels of other workers in each group, read from Redis at most every
    MEMBERS_SECONDS per group, and for all groups whose reading is due in one round trip."""

    def __init__(self):
        self.known: dict[str, tuple[float, list[str]]] = {}  # group -> (until, channels)
        self.due: dict[str, asyncio.Future] = {}
        self.reading: asyncio.Task | None = None

    async def others(self, layer, group: str) -> list[str]:
        known = self.known.get(group)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        future = self.due.get(group)
        if future is None:
            future = self.due[group] = asyncio.get_running_loop().create_future()
            if self.reading is None or self.reading.done():
                self.reading = asyncio.create_task(self._read_due(layer))
        return await asyncio.shield(future)

    async def _read_due(self, layer) -> None:
        await asyncio.sleep(0)  # the other answers of this turn of the loop join the reading
        while self.due:
            due, self.due = self.due, {}
            try:
                members = await _read_members(layer, list(due))
                own = f".{layer.client_prefix}!"
                others = {g: [name for name in members[g] if own not in name] for g in due}
                until = time.monotonic() + MEMBERS_SECONDS
            except Exception as error:  # the answers stream on to this worker's sockets
                _warn_now_and_then(f"could not read which workers watch a stream: {error!r}")
                others = {group: [] for group in due}
                until = time.monotonic() + RETRY_SECONDS
            for group, future in due.items():
                self.known[group] = (until, others[group])
                future.set_result(others[group])
            if len(self.known) > 10_000:  # groups of answers long finished
                expired = time.monotonic() - 60
                for group in [g for g, (until, _) in self.known.items() if until < expired]:
                    del self.known[group]


async def _read_members(layer, groups: list[str]) -> dict[str, list[str]]:
    """The channel names in each group, as channels-redis's RedisChannelLayer stores them (a
    sorted set per group, scored by when each joined), one pipeline per Redis shard."""
    oldest = int(time.time()) - layer.group_expiry
    by_shard: dict[int, list[str]] = {}
    for group in groups:
        by_shard.setdefault(layer.consistent_hash(group), []).append(group)
    members = {}
    for shard, shard_groups in by_shard.items():
        async with layer.connection(shard).pipeline(transaction=False) as pipeline:
            for group in shard_groups:
                pipeline.zrangebyscore(layer._group_key(group), oldest, "+inf")
            for group, names in zip(shard_groups, await pipeline.execute(), strict=True):
                members[group] = [name.decode() for name in names]
    return members


_memberships = PerLoop(_Membership)


_last_warning = 0.0


def _warn_now_and_then(message: str) -> None:
    """Log a warning at most every 10 s: when Redis is down every frame would log one."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning(message)
