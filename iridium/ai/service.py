"""The one door to the LLM: apps say who, which feature, the messages and the policy (an
`ai.Request`); the service picks the model, looks in the cache, runs the tool loop
(iridium.ai.toolloop), one provider call at a time through iridium.ai.step, which holds each
call's most cost against budgets and limits, and prices and records every call."""

import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from iridium.infra.db import reading_again_if_dropped

from . import budgets, pricing, replay, toolloop, wire
from . import cache as response_cache
from .call import ZERO_COST, Call, new_span_id
from .callers import resolve_caller
from .errors import AIError
from .flags import flag_store
from .routing import choose_route
from .types import CHOSEN_MODEL, Completion, Request, TextDelta, ToolCalled, Usage

Event = TextDelta | ToolCalled | Completion


async def stream(request: Request) -> AsyncIterator[Event]:
    """Stream an answer: `TextDelta`s as tokens arrive, a `ToolCalled` per tool run, and last
    the `Completion`. Raises `errors.AIError` (a message fit for the user) when it cannot answer.
    Closing the iterator early (the user pressed Stop) records what was produced so far."""
    # Closing this iterator early must close the inner ones at once, in this task, so that
    # the partial answer is recorded now (not whenever the garbage collector gets to it).
    async with aclosing(_run(request, streaming=True)) as events:
        async for event in events:
            yield event


async def complete(request: Request) -> Completion:
    """The whole answer at once (the provider is called without streaming)."""
    async with aclosing(_run(request, streaming=False)) as events:
        async for event in events:
            if isinstance(event, Completion):
                return event
    raise AssertionError("a call always ends with a Completion")  # pragma: no cover


async def _run(request: Request, *, streaming: bool) -> AsyncIterator[Event]:
    started = time.perf_counter()
    created_at = timezone.now()
    # In order: who, flags, model (or refusal), budgets and limits, cache, provider.
    call = await _prepare(request, streaming=streaming)
    # The turn as a whole ($ai_trace) once it ends however it ends: answered, failed, stopped.
    parts: list[str] = []
    text: str | None = None
    error = ""
    try:
        async with aclosing(_answer(request, call, created_at, started)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Completion):
                    text = event.text
                yield event
    except AIError as failure:
        error = str(failure)
        raise
    except Exception as failure:
        error = type(failure).__name__
        raise
    finally:
        if call.span_ids:  # a refusal before any call is no turn
            call.record_trace(
                latency_ms=(time.perf_counter() - started) * 1000,
                output_text=text if text is not None else ("".join(parts) or None),
                error=error,
            )


async def _answer(request: Request, call: Call, created_at, started) -> AsyncIterator[Event]:
    conversation = _with_system_prompt(list(request.messages), call.route.system_prompt)
    await reading_again_if_dropped(pricing.overrides.refresh_if_stale)

    cache_key, cache_ttl = None, 0
    if not request.tools and call.caller.user is not None:
        cache_ttl = response_cache.ttl_for(request.feature, request.cache)
    if cache_ttl:
        cache_key = response_cache.key_for(
            user_id=call.caller.user_id,
            model=call.model,
            messages=conversation,
            parameters=wire.parameters(
                temperature=request.temperature, max_output_tokens=call.max_output_tokens
            ),
        )
        cached = await response_cache.get(cache_key)
        if cached is not None:
            async for event in _answer_from_cache(call, cached, created_at, started):
                yield event
            return

    # With tools, the provider calls and tool runs are children of one span for the answer.
    root_span = new_span_id() if request.tools else ""
    result = toolloop.LoopResult()
    try:
        async with aclosing(toolloop.answer(call, conversation, root_span, result)) as items:
            async for item in items:
                yield item
        if cache_key and result.finish_reason == "stop":
            await response_cache.put(
                cache_key,
                {
                    "text": result.text,
                    "model": call.model,
                    "usage": [
                        result.usage.input_tokens,
                        result.usage.output_tokens,
                        result.usage.cached_tokens,
                    ],
                    "cost": str(result.cost.total_usd) if result.cost is not None else None,
                },
                cache_ttl,
            )
        yield Completion(
            text=result.text,
            model=call.model,
            trace_id=request.trace_id,
            usage=result.usage,
            cost=result.cost,
            steps=len(call.span_ids),
            tool_calls=result.tool_calls,
            finish_reason=result.finish_reason,
            span_ids=list(call.span_ids),
        )
    finally:
        if root_span:
            call.record_span(
                span_id=root_span,
                parent_id="",
                name=request.feature,
                created_at=created_at,
                latency_ms=(time.perf_counter() - started) * 1000,
                input_state=list(request.messages),
                output_state=result.text,
            )


async def _prepare(request: Request, *, streaming: bool) -> Call:
    """Who the call is for, whether it is private, the flags and the model (or a refusal)."""
    caller = await reading_again_if_dropped(lambda: resolve_caller(request.user))
    plan = caller.plan
    privacy = (
        request.privacy
        or plan.privacy_mode_forced
        or request.feature in settings.AI_PRIVATE_FEATURES
    )
    flags = await flag_store.evaluate(caller.distinct_id(request.trace_id), caller.groups)
    route = choose_route(plan=plan, complexity=request.complexity, flags=flags)
    properties = {"feature": request.feature, "plan": plan.slug, **request.properties}
    if not privacy:
        properties.update(request.private_properties)
    properties = {
        key: route.model if value is CHOSEN_MODEL else value for key, value in properties.items()
    }
    output_cap = plan.max_output_tokens
    if request.max_output_tokens:
        output_cap = min(request.max_output_tokens, output_cap)
    return Call(
        request=request,
        streaming=streaming,
        caller=caller,
        privacy=privacy,
        properties=properties,
        route=route,
        max_steps=request.max_steps or settings.AI_MAX_TOOL_STEPS,
        max_output_tokens=output_cap,
        replay_session_id=replay.valid(request.replay_session_id),
    )


async def _answer_from_cache(call: Call, cached: dict, created_at, started):
    """Serve a cached answer: streamed in pieces when the caller streams, cost 0, and the cost
    it saved recorded."""
    span_id = new_span_id()
    call.span_ids.append(span_id)
    # A cached answer costs nothing, but is a request (the daily limit counts it).
    await budgets.admit_free(call.caller, span_id=span_id)
    text = cached["text"]
    if call.streaming:
        for piece in _pieces(text):
            yield TextDelta(piece)
    usage = Usage(*cached["usage"])
    saved = Decimal(cached["cost"]) if cached["cost"] is not None else None
    answer = wire.Answer(started)
    answer.parts.append(text)
    answer.finish_reason = "stop"
    call.record_generation(
        created_at=created_at,
        span_id=span_id,
        parent_id="",
        step=1,
        body={"messages": list(call.request.messages)},
        answer=answer,
        usage=usage,
        usage_estimated=False,
        cost=ZERO_COST,
        latency_ms=(time.perf_counter() - started) * 1000,
        attempts=[],
        error="",
        cache_hit=True,
        saved_cost=saved,
    )
    yield Completion(
        text=text,
        model=cached["model"],
        trace_id=call.trace_id,
        usage=usage,
        cost=ZERO_COST,
        steps=0,
        finish_reason="stop",
        span_ids=[span_id],
        from_cache=True,
        saved_cost=saved,
    )


def _with_system_prompt(messages: list[dict], system_prompt: str) -> list[dict]:
    """An experiment's system prompt replaces the app's (or leads when there is none)."""
    if not system_prompt:
        return messages
    rest = [m for m in messages if m.get("role") != "system"]
    return [{"role": "system", "content": system_prompt}, *rest]


def _pieces(text: str, size: int = 24):
    """A cached answer, cut into stream-sized pieces after white space; joined, they are the
    text exactly."""
    piece = ""
    for word in re.findall(r"\S+\s*|\s+", text):
        piece += word
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece
