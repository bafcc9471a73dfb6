"""Every frame of an answer goes to every socket watching its object: to this worker's sockets
directly, and through channels-redis to the sockets of other workers in the object's Channels
group, when there are any. A worker streaming hundreds of answers to its own sockets so pays no
Redis round trip per token, and goes on streaming to them while Redis is unreachable.
"""

import asyncio
import contextlib
import logging
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from iridium.infra.loops import PerLoop

from . import channels_redis, protocol

logger = logging.getLogger(__name__)

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


async def group_send(group: str, frame: dict, loop=None) -> None:
    """Send `frame` to every socket watching `group`: this worker's directly (encoded once),
    other workers' through the channel layer (channels-redis), only when there are any.
    `loop`, the running event loop, when the caller knows it: on Python 3.11 asking for it
    costs a system call (`getpid`), at every token of every answer."""
    sockets = _local_sockets.get(group)
    if sockets:
        text = protocol.encode(frame)
        for consumer in list(sockets):
            try:
                await consumer.send_encoded(frame, text)
            except Exception:  # a socket that has gone: it unsubscribes when it disconnects
                logger.debug("could not send a frame to a closed socket", exc_info=True)
    if not single_process():
        await _send_to_other_workers(group, frame, loop)


# Sockets join the channel layer's group too, so that other workers can reach them; frames go
# only to members of other workers. The members of every group this worker streams to are read
# for all of them together every MEMBERS_SECONDS, in one round trip, by a task of their own:
# a frame never waits for Redis, except a group's first (read at once, with any others due). A
# tab that opens on another worker meanwhile misses at most that much, which the snapshot sent
# every second makes up (deltas carry their offset).
MEMBERS_SECONDS = 0.5
# A group no frame went to for this long is no longer read (its answer has ended).
FORGET_SECONDS = 5.0
# When Redis cannot be read, other workers are not tried again for this long: the answer streams
# on to this worker's sockets without waiting for Redis at every frame.
RETRY_SECONDS = 5.0
# An answer's last frame that could not go to other workers is held back for this long and goes
# to the members found once Redis can be read again (their sockets rejoin as it comes back), so
# that a tab on another worker does not show the answer as still being written.
HOLD_SECONDS = 15.0


async def _send_to_other_workers(group: str, frame: dict, loop=None) -> None:
    layer = get_channel_layer()
    memberships = _memberships.get(loop)
    if frame.get("type") == protocol.ANSWER_FINISHED:
        memberships.hold_if_unreachable(group, frame)
    for channel in await memberships.others(layer, group):
        if not await _relay(layer, channel, frame):  # Redis gone: not tried for RETRY_SECONDS
            memberships.skip(group)
            if frame.get("type") == protocol.ANSWER_FINISHED:
                memberships.hold_if_unreachable(group, frame)
            return


async def _relay(layer, channel: str, frame: dict) -> bool:
    """Send `frame` to a socket of another worker; False if Redis could not take it. A socket
    whose channel is full does not keep up: it catches up from a snapshot."""
    try:
        async with asyncio.timeout(settings.REDIS_TIMEOUT):
            await layer.send(channel, {"type": "stream.frame", "frame": frame})
    except ChannelFull:
        return True
    except Exception as error:
        warn_now_and_then(f"could not relay a frame to another worker: {error!r}")
        return False
    return True


class _Membership:
    """The channels of other workers in each group this worker streams to, read from Redis by
    one task: every group due within half of MEMBERS_SECONDS is read in the same round (one
    script per shard, iridium.live.channels_redis), so that with hundreds of answers streaming
    the groups fall into step and Redis is read a few times a second, not hundreds."""

    def __init__(self):
        self.known: dict[str, tuple[float, list[str]]] = {}  # group -> (read again at, channels)
        self.used: dict[str, float] = {}  # group -> when a frame last went to it
        self.waiting: dict[str, asyncio.Future] = {}  # groups whose first frame waits
        self.wake = asyncio.Event()
        self.layer = None
        self.reading: asyncio.Task | None = None
        self.unreachable: set[str] = set()  # groups whose members could not be read last time
        # group -> (last frame, hold until, channels it went to), see HOLD_SECONDS
        self.held: dict[str, tuple[dict, float, set[str]]] = {}

    async def others(self, layer, group: str) -> list[str]:
        self.used[group] = time.monotonic()
        self.layer = layer
        known = self.known.get(group)
        if known is not None:
            return known[1]  # read again by the reading task when due
        future = self.waiting.get(group)
        if future is None:
            future = self.waiting[group] = asyncio.get_running_loop().create_future()
            self.wake.set()
        if self.reading is None or self.reading.done():
            self.reading = asyncio.create_task(self._read_while_used(), name="stream members")
        return await asyncio.shield(future)

    def skip(self, group: str) -> None:
        """Other workers are unreachable for now: this group's frames stay here a while."""
        self.known[group] = (time.monotonic() + RETRY_SECONDS, [])
        self.unreachable.add(group)

    def hold_if_unreachable(self, group: str, frame: dict) -> None:
        """Keep an answer's last frame for the other workers' sockets until Redis is back."""
        if group in self.unreachable:
            self.held[group] = (frame, time.monotonic() + HOLD_SECONDS, set())

    async def _deliver_held(self, found: dict[str, list[str]]) -> None:
        now = time.monotonic()
        for group in [g for g in self.held if g in found and g not in self.unreachable]:
            frame, _, sent = self.held[group]
            for channel in set(found[group]) - sent:
                if not await _relay(self.layer, channel, frame):
                    self.skip(group)
                    break
                sent.add(channel)
        for group in [g for g, (_, until, _) in self.held.items() if until < now]:
            del self.held[group]

    async def _read_while_used(self) -> None:
        while True:
            await asyncio.sleep(0)  # the other answers of this turn of the loop join the round
            now = time.monotonic()
            forgotten = [g for g, last in self.used.items() if now - last > FORGET_SECONDS]
            for group in forgotten:
                if group in self.held:  # read on while its last frame waits for other workers
                    continue
                del self.used[group]
                self.known.pop(group, None)
                self.unreachable.discard(group)
            if not self.used and not self.waiting:
                return
            soon = now + MEMBERS_SECONDS / 2
            due = {g for g in self.used if g not in self.known or self.known[g][0] < soon}
            waiting, self.waiting = self.waiting, {}
            due |= waiting.keys()
            if due:
                found = await self._read(sorted(due))
                for group, future in waiting.items():
                    if not future.done():
                        future.set_result(found.get(group, []))
                if self.held:
                    await self._deliver_held(found)
            self.wake.clear()
            if self.waiting:
                continue
            next_due = min((self.known[g][0] for g in self.used if g in self.known), default=None)
            pause = MEMBERS_SECONDS if next_due is None else max(next_due - time.monotonic(), 0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self.wake.wait()

    async def _read(self, groups: list[str]) -> dict[str, list[str]]:
        try:
            async with asyncio.timeout(settings.REDIS_TIMEOUT):
                members = await channels_redis.members(self.layer, groups)
            others = {
                group: [n for n in members[group] if not channels_redis.is_own(self.layer, n)]
                for group in groups
            }
            until = time.monotonic() + MEMBERS_SECONDS
            self.unreachable.difference_update(groups)
        except Exception as error:  # the answers stream on to this worker's sockets
            warn_now_and_then(f"could not read which workers watch a stream: {error!r}")
            others = {group: [] for group in groups}
            until = time.monotonic() + RETRY_SECONDS
            self.unreachable.update(groups)
        for group in groups:
            self.known[group] = (until, others[group])
        return others


_memberships = PerLoop(_Membership)


_last_warning = 0.0


def warn_now_and_then(message: str) -> None:
    """Log a warning at most every 10 s: when Redis is down every frame would log one."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning(message)
