"""The PostHog client of the process: what its resets leave behind."""

import asyncio
import threading

import pytest
from posthog.consumer import Consumer

from iridium.ai import posthog

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_reset_client_stops_its_threads(ai_settings, fake_posthog):
    """Each reset (every AI test makes one) ends the old client's consumer threads, so that a
    long test run does not pile them up."""

    def consumers():
        return [t for t in threading.enumerate() if isinstance(t, Consumer) and t.is_alive()]

    posthog.reset(flush_timeout=0)
    await asyncio.sleep(0)
    before = len(consumers())
    for index in range(3):
        posthog.capture(
            {"event": "probe", "distinct_id": f"d{index}", "properties": {}, "groups": {}}
        )
        posthog.reset()
    for _ in range(100):
        if len(consumers()) <= before:
            break
        await asyncio.sleep(0.05)
    assert len(consumers()) <= before
    assert len(fake_posthog.wait_for(3, name="probe")) == 3
