"""While PostHog does not answer, only the call that starts a person's first flag evaluation
waits for it (at most AI_FLAGS_WAIT_SECONDS); the calls made meanwhile take the defaults at once."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from iridium import ai
from iridium.ai import posthog
from iridium.ai.flags import flag_store
from tests.fakes.posthog_server import SilentServer

pytestmark = pytest.mark.django_db(transaction=True)


def ask(trace_id):
    return [{"role": "user", "content": f"hello {trace_id}"}]


async def timed_call(user, trace_id):
    started = time.perf_counter()
    completion = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask(trace_id), trace_id=trace_id)
    )
    return completion, time.perf_counter() - started


async def test_only_the_first_call_waits_for_a_black_holed_posthog(ai_settings, make_user):
    user = await sync_to_async(make_user)("fiona", plan="pro")
    warm = await sync_to_async(make_user)("warm", plan="pro")
    await timed_call(warm, "warm-up")  # the AI client and its connection, made once
    ai_settings.AI_FLAGS_WAIT_SECONDS = 1.0
    ai_settings.POSTHOG_TIMEOUT = 10  # PostHog's own client would wait this long
    with SilentServer() as silent:
        ai_settings.POSTHOG_HOST = silent.url
        flag_store.forget()
        first = asyncio.create_task(timed_call(user, "f-1"))
        await asyncio.sleep(0.2)  # the first evaluation is now in flight, and hangs
        later = [await timed_call(user, f"f-{index}") for index in range(2, 6)]
        first_completion, first_took = await first
        posthog.reset(flush_timeout=0)
    assert first_completion.model == "gpt-4o-mini"  # the default
    assert 1.0 <= first_took < 1.0 + 1.0  # it waited, and no longer than allowed
    for completion, took in later:
        assert completion.model == "gpt-4o-mini"
        assert took < 0.5  # no wait for the flags at all
