"""Every frame of an answer goes to every socket watching its object: to this worker's sockets
directly, and through channels-redis to the sockets of other workers in the object's Channels
group, when there are any. A worker streaming hundreds of answers to its own sockets so pays no
Redis round trip per token, and goes on streaming to them while Redis is unreachable.
"""

import asyncio
import logging
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from iridium.infra.loops import PerLoop

from . import channels_redis

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
# members are read at most every MEMBERS_SECONDS per group, and frames go only to members of
# other workers. A tab that opens on another worker meanwhile misses at most that much, which
# the snapshot sent every second makes up (deltas carry their offset).
MEMBERS_SECONDS = 0.5
# When Redis cannot be read, other workers are not tried again for this long: the answer streams
# on to this worker's sockets without waiting for Redis at every frame.
RETRY_SECONDS = 5.0


async def _send_to_other_workers(group: str, frame: dict) -> None:
    layer = get_channel_layer()
    memberships = _memberships.get()
    for channel in await memberships.others(layer, group):
        try:
            async with asyncio.timeout(settings.REDIS_TIMEOUT):
                await layer.send(channel, {"type": "stream.frame", "frame": frame})
        except ChannelFull:  # that socket does not keep up: it catches up from a snapshot
            continue
        except Exception as error:  # Redis gone: not tried again for RETRY_SECONDS
            warn_now_and_then(f"could not relay a frame to another worker: {error!r}")
            memberships.skip(group)
            return


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

    def skip(self, group: str) -> None:
        """Other workers are unreachable for now: this group's frames stay here a while."""
        self.known[group] = (time.monotonic() + RETRY_SECONDS, [])

    async def _read_due(self, layer) -> None:
        await asyncio.sleep(0)  # the other answers of this turn of the loop join the reading
        while self.due:
            due, self.due = self.due, {}
            try:
                async with asyncio.timeout(settings.REDIS_TIMEOUT):
                    members = await channels_redis.members(layer, list(due))
                others = {
                    group: [n for n in members[group] if not channels_redis.is_own(layer, n)]
                    for group in due
                }
                until = time.monotonic() + MEMBERS_SECONDS
            except Exception as error:  # the answers stream on to this worker's sockets
                warn_now_and_then(f"could not read which workers watch a stream: {error!r}")
                others = {group: [] for group in due}
                until = time.monotonic() + RETRY_SECONDS
            for group, future in due.items():
                self.known[group] = (until, others[group])
                future.set_result(others[group])
            if len(self.known) > 10_000:  # groups of answers long finished
                expired = time.monotonic() - 60
                for group in [g for g, (until, _) in self.known.items() if until < expired]:
                    del self.known[group]


_memberships = PerLoop(_Membership)


_last_warning = 0.0


def warn_now_and_then(message: str) -> None:
    """Log a warning at most every 10 s: when Redis is down every frame would log one."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning(message)
