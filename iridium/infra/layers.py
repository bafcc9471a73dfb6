"""Channels' in-memory layer, for the embedded default (one process, no Redis).

Channels' own class sweeps every channel and group for expired messages on every receive, which
costs O(open sockets) per message: with hundreds of streams open that sweep is most of the work.
Expiry is a safety net (messages are normally received within milliseconds), so here the sweep
runs at most once a second.
"""

import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

SWEEP_EVERY_SECONDS = 1.0


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    _last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_EVERY_SECONDS:
            self._last_sweep = now
            super()._clean_expired()
