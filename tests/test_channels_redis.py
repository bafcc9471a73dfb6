"""iridium/live/channels_redis.py reads internals of channels-redis (group keys, shards, channel
names): here against the installed version and a real Redis. Installing any version other than
the one the adapter names (`CHECKED_WITH`) fails the version test first, so that an upgrade waits
until someone checks the adapter against the new version."""

import importlib.metadata
import time
import types
import uuid

import channels_redis.core
import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from iridium.live import channels_redis as adapter
from tests.conftest import require


def test_the_installed_channels_redis_is_the_one_the_adapter_was_checked_against():
    """An upgrade (of the lock or of the environment) fails here until someone re-checks the
    adapter against the new version and changes `CHECKED_WITH`."""
    assert importlib.metadata.version("channels-redis") == adapter.CHECKED_WITH


@pytest.fixture
async def layers():
    """This process's layer and another process's (a layer with a client prefix of its own),
    both on the configured Redis."""
    require(settings.REDIS_URL, "REDIS_URL")
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    this, other = RedisChannelLayer(**config), RedisChannelLayer(**config)
    joined = []

    async def join(layer, group, channel):
        await layer.group_add(group, channel)
        joined.append((layer, group, channel))

    yield this, other, join
    for layer, group, channel in joined:
        await layer.group_discard(group, channel)
    await this.close_pools()
    await other.close_pools()


def group_name() -> str:
    return f"test-members-{uuid.uuid4().hex}"


async def test_members_of_a_group_and_whose_they_are(layers):
    this, other, join = layers
    group, empty = group_name(), group_name()
    mine = await this.new_channel()
    theirs = await other.new_channel()
    await join(this, group, mine)
    await join(other, group, theirs)

    found = await adapter.members(this, [group, empty])

    assert sorted(found[group]) == sorted([mine, theirs])
    assert found[empty] == []
    assert adapter.is_own(this, mine) and not adapter.is_own(this, theirs)
    assert adapter.is_own(other, theirs) and not adapter.is_own(other, mine)


async def test_groups_on_several_shards_are_read_together():
    """With two Redis hosts (here two databases of the one server) groups hash to either shard;
    each group's members are read from its own shard."""
    require(settings.REDIS_URL, "REDIS_URL")
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    [host] = config["hosts"]
    shards = [host["db"], (host["db"] + 1) % 16]
    config["hosts"] = [{**host, "db": number} for number in shards]
    sharded = RedisChannelLayer(**config)
    groups = {0: [], 1: []}
    while min(len(names) for names in groups.values()) < 2:
        name = group_name()
        groups[sharded.consistent_hash(name)].append(name)
    names = [*groups[0][:2], *groups[1][:2]]
    channels = {name: await sharded.new_channel() for name in names}
    try:
        for name, channel in channels.items():
            await sharded.group_add(name, channel)
        found = await adapter.members(sharded, names)
        assert found == {name: [channel] for name, channel in channels.items()}
    finally:
        for name, channel in channels.items():
            await sharded.group_discard(name, channel)
        await sharded.close_pools()


async def test_a_member_older_than_the_group_expiry_is_not_returned(layers, monkeypatch):
    this, other, join = layers
    group = group_name()
    stale, fresh = await other.new_channel(), await other.new_channel()
    # The stale channel joined longer ago than group_expiry (channels-redis scores a member
    # with the time it joined).
    long_ago = time.time() - this.group_expiry - 60
    with monkeypatch.context() as patched:
        patched.setattr(channels_redis.core, "time", types.SimpleNamespace(time=lambda: long_ago))
        await join(other, group, stale)
    await join(other, group, fresh)

    assert await adapter.members(this, [group]) == {group: [fresh]}
