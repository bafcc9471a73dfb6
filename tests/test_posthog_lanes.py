"""No silently dropped events: `$ai_*` events go through the SDK's AI lane (`/i/v0/ai/batch/`,
8 MiB an event) instead of `/batch/` (900 KiB, over which the SDK drops an event with a log
line), and an event too large even for that lane arrives with its content shortened and marked."""

import asyncio
import contextlib
import json

import pytest
from asgiref.sync import sync_to_async

from iridium import ai
from iridium.ai import posthog
from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

ANSWER_80_KB = ("All the details you asked for, once more. " * 2000)[:80_000]
ORDINARY_LANE_LIMIT = 900 * 1024


def history(turns: int) -> list[tuple[str, str]]:
    pairs = []
    for turn in range(turns):
        pairs += [("user", f"Question {turn}: tell me everything."), ("assistant", ANSWER_80_KB)]
    return pairs


async def test_every_call_of_a_long_conversation_reaches_posthog_whole(
    ai_settings, user, fake_posthog
):
    # 20 turns with answers of 80 KB before: every call's input window is over 1 MB.
    conversation = await sync_to_async(factories.conversation)(user, messages=history(20))
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await frames_until(socket, "ready")
    for turn in range(6):
        await socket.send_json_to({"type": "send", "content": f"And {turn}?", "client_id": "c"})
        await frames_until(socket, "answer_finished", timeout=20)
        await idle("chat", conversation.pk)
    await socket.disconnect()
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)

    calls = await Generation.objects.acount()  # the answers, and the steps that used tools
    assert calls >= 6
    events = fake_posthog.wait_for(calls, name="$ai_generation", timeout=10)
    assert len(events) == calls
    for event in events:
        assert event["path"] == "/i/v0/ai/batch/"
        assert len(json.dumps(event)) > ORDINARY_LANE_LIMIT  # /batch/ would have dropped it
        assert "contentTruncated" not in event["properties"]
        inputs = event["properties"]["$ai_input"]
        assert sum(m.get("content") == ANSWER_80_KB for m in inputs) >= 13
    # Events that are not AI events keep the ordinary lane.
    assert all(e["path"] == "/batch/" for e in fake_posthog.events() if e["event"][:4] != "$ai_")


async def test_an_event_too_large_even_for_the_ai_lane_arrives_shortened_and_marked(
    ai_settings, user, fake_posthog
):
    # 9 MB of input: the provider refuses the request (413), and its error is still reported.
    huge = [{"role": "user", "content": "x" * 3_000_000} for _ in range(3)]
    with contextlib.suppress(ai.ProviderError):
        await ai.complete(ai.Request(user=user, feature="chat", messages=huge, trace_id="t-huge"))
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)
    [event] = fake_posthog.wait_for(1, name="$ai_generation", timeout=10)
    properties = event["properties"]
    assert event["path"] == "/i/v0/ai/batch/"
    assert properties["contentTruncated"] is True
    assert properties["$ai_is_error"] is True and properties["$ai_http_status"] == 413
    assert len(json.dumps(event)) < posthog.AI_EVENT_BYTES
    # The shape and the figures are kept; only the long strings are cut, visibly.
    assert len(properties["$ai_input"]) == 3
    assert properties["$ai_input"][0]["content"].endswith(posthog.TRUNCATED)
    assert properties["$ai_trace_id"] == "t-huge" and properties["$ai_model"]


def test_fitted_leaves_small_events_alone_and_always_fits_large_ones():
    small = {"$ai_input": [{"content": "hi"}], "$ai_input_tokens": 3}
    assert posthog.fitted(small, 1000) is small
    many = {"$ai_input": [{"content": "y" * 10} for _ in range(5000)], "$ai_total_cost_usd": 1.5}
    fitted = posthog.fitted(many, 2000)  # too many messages even when each is short
    assert len(json.dumps(fitted)) <= 2000
    assert fitted == {"$ai_total_cost_usd": 1.5, "contentTruncated": True}


@pytest.mark.parametrize("private", [False, True])
async def test_a_failed_call_links_its_exception_for_error_tracking(
    ai_settings, user, fake_posthog, private
):
    """PostHog's LLM view links an error to its stack trace through `$ai_trace_id` on the
    `$exception` event; in privacy mode no exception is sent (its message may quote the prompt)."""
    request = ai.Request(
        user=user,
        feature="chat",
        messages=[{"role": "user", "content": "hi [[demo:fault=400]]"}],
        trace_id="t-failing",
        privacy=private,
    )
    with pytest.raises(ai.ProviderError):
        await ai.complete(request)
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)
    [generation] = fake_posthog.wait_for(1, name="$ai_generation")
    if private:
        await asyncio.sleep(0.3)
        assert fake_posthog.events("$exception") == []
        return
    [exception] = fake_posthog.wait_for(1, name="$exception")
    properties = exception["properties"]
    assert properties["$ai_trace_id"] == "t-failing"
    assert properties["$ai_span_id"] == generation["properties"]["$ai_span_id"]
    assert exception["distinct_id"] == generation["distinct_id"]
    [raised] = properties["$exception_list"]
    assert raised["type"] == "BadRequestError"
    assert raised["stacktrace"]["frames"]  # the stack trace, for error tracking
