"""What Iridium needs of channels-redis beyond the channel layer's public API, in one place:
which channels are members of a group, and whether a channel is this process's.

channels-redis keeps a group as a sorted set (`_group_key(group)`), members scored by when they
joined, on the shard `consistent_hash(group)`; a process's channels are named
`<prefix>.<client_prefix>!<id>`. These are internals of channels-redis: CHECKED_WITH names the
version this module was checked against, and tests/test_channels_redis.py fails on any other
installed version, so an upgrade waits until someone re-checks these internals (the tests below
it, and the source of the new version) and changes CHECKED_WITH.
"""

import time

from iridium.infra.redis import run_script

CHECKED_WITH = "4.3.0"


# Each group's members, all groups of a shard in one command (a pipeline of a ZRANGEBYSCORE per
# group cost more CPU to build and read than the rest of a round, with hundreds of groups).
_MEMBERS = """
local found = {}
for i, key in ipairs(KEYS) do
    found[i] = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf')
end
return found
"""


async def members(layer, groups: list[str]) -> dict[str, list[str]]:
    """The channel names in each group, one round trip per Redis shard."""
    oldest = int(time.time()) - layer.group_expiry
    by_shard: dict[int, list[str]] = {}
    for group in groups:
        by_shard.setdefault(layer.consistent_hash(group), []).append(group)
    found = {}
    for shard, shard_groups in by_shard.items():
        keys = [layer._group_key(group) for group in shard_groups]
        read = await run_script(layer.connection(shard), _MEMBERS, keys, [oldest])
        for group, names in zip(shard_groups, read, strict=True):
            found[group] = [name.decode() for name in names]
    return found


def is_own(layer, channel: str) -> bool:
    """True for a channel of this process (its receive loop delivers it here)."""
    return f".{layer.client_prefix}!" in channel
