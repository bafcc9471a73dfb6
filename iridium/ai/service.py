"""The one door to the LLM: apps say who, which feature, the messages and the policy; the
service picks the model, calls the provider, runs tools, prices and records every call."""

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import openai
from django.conf import settings
from django.utils import timezone

from . import budgets, errors, pricing, provider
from . import cache as response_cache
from .callers import resolve_caller
from .flags import flag_store
from .recorder import recorder
from .records import Caller, GenerationRecord, SpanRecord
from .routing import Route, choose_route
from .types import (
    CHOSEN_MODEL,
    Completion,
    Complexity,
    Cost,
    TextDelta,
    Tool,
    ToolCalled,
    ToolContext,
    ToolFailed,
    Usage,
)

logger = logging.getLogger(__name__)

Event = TextDelta | ToolCalled | Completion


async def stream(
    *,
    user,
    feature: str,
    messages: Sequence[dict],
    trace_id: str,
    properties: dict | None = None,
    tools: Sequence[Tool] = (),
    max_steps: int | None = None,
    privacy: bool = False,
    complexity: Complexity = "simple",
    cache: bool | int | None = None,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
) -> AsyncIterator[Event]:
    """Stream an answer: `TextDelta`s as tokens arrive, a `ToolCalled` per tool run, and last
    the `Completion`. Raises `errors.AIError` (a message fit for the user) when it cannot answer.
    Closing the iterator early (the user pressed Stop) records what was produced so far.

    `cache`: True to answer an identical request of the same user from the cache (for the
    feature's TTL), a number of seconds for another TTL; tool-using calls are never cached.
    """
    call = _Call.make(locals(), streaming=True)
    # Closing this iterator early must close the inner ones at once, in this task, so that
    # the partial answer is recorded now (not whenever the garbage collector gets to it).
    async with aclosing(call.run()) as events:
        async for event in events:
            yield event


async def complete(
    *,
    user,
    feature: str,
    messages: Sequence[dict],
    trace_id: str,
    properties: dict | None = None,
    tools: Sequence[Tool] = (),
    max_steps: int | None = None,
    privacy: bool = False,
    complexity: Complexity = "simple",
    cache: bool | int | None = None,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
) -> Completion:
    """The whole answer at once (the provider is called without streaming)."""
    call = _Call.make(locals(), streaming=False)
    async with aclosing(call.run()) as events:
        async for event in events:
            if isinstance(event, Completion):
                return event
    raise AssertionError("a call always ends with a Completion")  # pragma: no cover


def _parameters(temperature, max_output_tokens) -> dict:
    parameters = {}
    if temperature is not None:
        parameters["temperature"] = temperature
    if max_output_tokens is not None:
        parameters["max_completion_tokens"] = max_output_tokens
    return parameters


def new_span_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _StepResult:
    text: str
    tool_calls: list[dict]
    usage: Usage
    cost: Cost | None
    finish_reason: str
    span_id: str


@dataclass
class _Call:
    user: Any
    feature: str
    messages: list[dict]
    trace_id: str
    properties: dict
    tools: list[Tool]
    max_steps: int
    privacy: bool
    complexity: Complexity
    parameters: dict
    streaming: bool
    cache: bool | int | None = None
    caller: Caller | None = None
    route: Route | None = None
    model: str = ""
    # What the provider calls cost so far (None once a price is unknown), charged once.
    spent: Cost | None = field(default_factory=lambda: Cost(Decimal(0), Decimal(0), Decimal(0)))
    charged: bool = False
    span_ids: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, arguments: dict, *, streaming: bool) -> "_Call":
        return cls(
            user=arguments["user"],
            feature=arguments["feature"],
            messages=list(arguments["messages"]),
            trace_id=arguments["trace_id"],
            properties=dict(arguments["properties"] or {}),
            tools=list(arguments["tools"]),
            max_steps=arguments["max_steps"] or settings.AI_MAX_TOOL_STEPS,
            privacy=arguments["privacy"],
            complexity=arguments["complexity"],
            parameters=_parameters(arguments["temperature"], arguments["max_output_tokens"]),
            streaming=streaming,
            cache=arguments["cache"],
        )

    async def run(self) -> AsyncIterator[Event]:
        started = time.perf_counter()
        created_at = timezone.now()
        # In order: who, flags, model (or refusal), budgets and limits, cache, provider.
        self.caller = await resolve_caller(self.user)
        plan = self.caller.plan
        self.privacy = (
            self.privacy or plan.privacy_mode_forced or self.feature in settings.AI_PRIVATE_FEATURES
        )
        self.properties = {"feature": self.feature, "plan": plan.slug, **self.properties}
        flags = await flag_store.evaluate(
            self.caller.distinct_id(self.trace_id), self.caller.groups
        )
        self.route = choose_route(plan=plan, complexity=self.complexity, flags=flags)
        self.model = self.route.model
        self.properties = {
            key: self.model if value is CHOSEN_MODEL else value
            for key, value in self.properties.items()
        }
        conversation = _with_system_prompt(self.messages, self.route.system_prompt)
        await pricing.overrides.refresh_if_stale()
        admission = await budgets.admit(self.caller)

        cache_key, cache_ttl = None, 0
        if not self.tools and self.caller.user is not None:
            cache_ttl = response_cache.ttl_for(self.feature, self.cache)
        if cache_ttl:
            cache_key = response_cache.key_for(
                user_id=self.caller.user_id,
                model=self.model,
                messages=conversation,
                parameters=self.parameters,
            )
            cached = await response_cache.get(cache_key)
            if cached is not None:
                async for event in self._answer_from_cache(cached, created_at, started, admission):
                    yield event
                return

        # With tools, the provider calls and tool runs are children of one span for the answer.
        root_span = new_span_id() if self.tools else ""
        usage, cost, tool_events = Usage(), Cost(Decimal(0), Decimal(0), Decimal(0)), []
        text, finish_reason = "", "stop"
        try:
            for step in range(1, self.max_steps + 1):
                result = None
                try:
                    async with aclosing(
                        self._provider_step(conversation, step, root_span)
                    ) as items:
                        async for item in items:
                            if isinstance(item, _StepResult):
                                result = item
                            else:
                                yield item
                except errors.ProviderError:
                    if step == 1:
                        await budgets.release(admission)  # no answer: not a request
                    raise
                usage += result.usage
                cost = cost + result.cost if (cost is not None and result.cost) else None
                text, finish_reason = result.text, result.finish_reason
                if not result.tool_calls:
                    break
                conversation.append(_assistant_message(result.text, result.tool_calls))
                for tool_call in result.tool_calls:
                    called = await self._run_tool(tool_call, root_span)
                    tool_events.append(called)
                    yield called
                    conversation.append(
                        {
                            "role": "tool",
                            "tool_call_id": tool_call["id"],
                            "content": json.dumps(called.result, default=str),
                        }
                    )
            await self._charge(admission)
            if cache_key and finish_reason == "stop":
                await response_cache.put(
                    cache_key,
                    {
                        "text": text,
                        "model": self.model,
                        "usage": [usage.input_tokens, usage.output_tokens, usage.cached_tokens],
                        "cost": str(cost.total_usd) if cost is not None else None,
                    },
                    cache_ttl,
                )
            yield Completion(
                text=text,
                model=self.model,
                trace_id=self.trace_id,
                usage=usage,
                cost=cost,
                steps=len(self.span_ids),
                tool_calls=tool_events,
                finish_reason=finish_reason,
                span_ids=list(self.span_ids),
            )
        finally:
            # A failed or stopped answer still spent what its provider calls cost.
            await self._charge(admission)
            if root_span:
                self._record_span(
                    span_id=root_span,
                    parent_id="",
                    name=self.feature,
                    created_at=created_at,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    input_state=self.messages,
                    output_state=text,
                )

    async def _charge(self, admission):
        if not self.charged:
            self.charged = True
            await budgets.charge(admission, self.spent.total_usd if self.spent else None)

    async def _answer_from_cache(self, cached, created_at, started, admission):
        """Serve a cached answer: streamed in pieces when the caller streams, cost 0, and the
        cost it saved recorded."""
        text = cached["text"]
        if self.streaming:
            for piece in _pieces(text):
                yield TextDelta(piece)
        usage = Usage(*cached["usage"])
        saved = Decimal(cached["cost"]) if cached["cost"] is not None else None
        span_id = new_span_id()
        free = Cost(Decimal(0), Decimal(0), Decimal(0))
        state = _StreamState()
        state.parts.append(text)
        state.finish_reason = "stop"
        self._record_generation(
            created_at=created_at,
            span_id=span_id,
            parent_id="",
            step=1,
            request={"messages": self.messages},
            state=state,
            usage=usage,
            cost=free,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=[],
            error="",
            cache_hit=True,
            saved_cost=saved,
        )
        yield Completion(
            text=text,
            model=cached["model"],
            trace_id=self.trace_id,
            usage=usage,
            cost=free,
            steps=0,
            finish_reason="stop",
            span_ids=[span_id],
            from_cache=True,
            saved_cost=saved,
        )

    # --- One provider call ------------------------------------------------------------------

    async def _provider_step(self, conversation, step, parent_id):
        allow_tools = bool(self.tools) and step < self.max_steps
        request = {"model": self.model, "messages": conversation, **self.parameters}
        if self.tools:
            # On the last allowed step the model must answer in words.
            request["tools"] = [tool.schema() for tool in self.tools]
            request["tool_choice"] = "auto" if allow_tools else "none"
        if self.streaming:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}

        span_id = new_span_id()
        self.span_ids.append(span_id)
        attempts: list[dict] = []
        token = provider.current_attempts.set(attempts)
        created_at = timezone.now()
        started = time.perf_counter()
        state = _StreamState()
        outcome = "error"
        try:
            completions = provider.client().chat.completions
            if self.streaming:
                # The SDK makes the request (auth, retries, errors); the event stream is read
                # line by line here. Building the SDK's typed chunk objects costs about 0.3 ms
                # a token, which is most of a worker's time when hundreds of answers stream.
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(settings.AI_DEADLINE_SECONDS):
                        response = await stack.enter_async_context(
                            completions.with_streaming_response.create(**request)
                        )
                    state.answering = True
                    async for line in response.iter_lines():
                        chunk = _event_data(line)
                        if chunk is None:
                            continue
                        if chunk is _DONE:
                            break
                        delta_text = state.take(chunk, started)
                        if delta_text:
                            yield TextDelta(delta_text)
                if state.finish_reason is None:
                    raise _CutStream()
            else:
                async with asyncio.timeout(settings.AI_DEADLINE_SECONDS):
                    completion = await completions.create(**request)
                state.take_completion(completion, started)
            outcome = "ok"
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"
            raise
        except Exception as error:
            state.error = f"{type(error).__name__}: {error}"
            raise self._provider_error(error, attempts, state) from error
        finally:
            provider.current_attempts.reset(token)
            latency_ms = (time.perf_counter() - started) * 1000
            error_text = "" if outcome != "error" else _describe_attempts(attempts, state.error)
            if outcome == "cancelled":
                state.finish_reason = "cancelled"
            usage = state.usage or self._estimated_usage(conversation, state)
            step_cost = pricing.price(provider=settings.AI_PROVIDER, model=self.model, usage=usage)
            state.cost = step_cost
            self.spent = self.spent + step_cost if (self.spent and step_cost) else None
            self._record_generation(
                created_at=created_at,
                span_id=span_id,
                parent_id=parent_id,
                step=step,
                request=request,
                state=state,
                usage=usage,
                cost=step_cost,
                latency_ms=latency_ms,
                attempts=attempts,
                error=error_text,
            )
        yield _StepResult(
            text=state.text,
            tool_calls=state.tool_calls(),
            usage=usage,
            cost=step_cost,
            finish_reason=state.finish_reason or "stop",
            span_id=span_id,
        )

    def _provider_error(self, error: Exception, attempts, state) -> errors.ProviderError:
        status = getattr(error, "status_code", None)
        detail = f"{type(error).__name__}: {error}"
        if isinstance(error, _CutStream | _StreamError) or state.answering:
            # The stream had begun: the connection broke or the server sent an error event.
            message = errors.PROVIDER_CUT
        elif isinstance(error, openai.RateLimitError):
            message = errors.PROVIDER_BUSY
        elif isinstance(error, openai.APITimeoutError | TimeoutError):
            message = errors.PROVIDER_TIMEOUT
        elif isinstance(error, openai.APIConnectionError):
            message = errors.PROVIDER_UNREACHABLE
        elif isinstance(error, openai.APIStatusError) and error.status_code < 500:
            message = errors.PROVIDER_REJECTED
        else:
            message = errors.PROVIDER_FAILED
        logger.warning(
            "AI call failed: feature=%s model=%s trace=%s attempts=%d: %s",
            self.feature,
            self.model,
            self.trace_id,
            len(attempts),
            detail,
        )
        return errors.ProviderError(message, detail=detail, status=status)

    def _estimated_usage(self, conversation, state) -> Usage:
        # The provider reports usage only at the end of a complete stream; for a stopped or cut
        # answer it is estimated (about 4 characters a token) and marked as estimated.
        if not state.text and not state.tool_fragments:
            return Usage()
        state.usage_estimated = True
        prompt_chars = sum(len(str(m.get("content") or "")) for m in conversation)
        return Usage(
            input_tokens=math.ceil(prompt_chars / 4),
            output_tokens=math.ceil(len(state.text) / 4),
        )

    # --- Tools ------------------------------------------------------------------------------

    async def _run_tool(self, tool_call: dict, parent_id: str) -> ToolCalled:
        name = tool_call["function"]["name"]
        created_at = timezone.now()
        started = time.perf_counter()
        arguments: Any = {}
        is_error = True
        tool = next((t for t in self.tools if t.name == name), None)
        try:
            arguments = json.loads(tool_call["function"]["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError:
            result = {"error": "The tool arguments were not a valid JSON object."}
        else:
            if tool is None:
                result = {"error": f"There is no tool named {name!r}."}
            else:
                context = ToolContext(
                    user=self.caller.user, trace_id=self.trace_id, feature=self.feature
                )
                try:
                    result = await tool.run(arguments, context)
                    is_error = False
                except ToolFailed as failure:
                    result = {"error": str(failure)}
                except Exception:
                    logger.exception("tool %s failed (trace %s)", name, self.trace_id)
                    result = {"error": "The tool failed."}
        self._record_span(
            span_id=new_span_id(),
            parent_id=parent_id,
            name=f"tool:{name}",
            created_at=created_at,
            latency_ms=(time.perf_counter() - started) * 1000,
            input_state=arguments,
            output_state=result,
            is_error=is_error,
            error=result.get("error", "") if is_error else "",
        )
        return ToolCalled(name=name, arguments=arguments, result=result, is_error=is_error)

    # --- Records ----------------------------------------------------------------------------

    def _record_generation(
        self,
        *,
        created_at,
        span_id,
        parent_id,
        step,
        request,
        state,
        usage,
        cost,
        latency_ms,
        attempts,
        error,
        cache_hit=False,
        saved_cost=None,
    ):
        properties = self.properties
        if state.usage_estimated:
            properties = {**properties, "usageEstimated": True}
        produced = state.text or state.tool_fragments
        output = [_assistant_message(state.text, state.tool_calls())] if produced else None
        recorder.submit(
            GenerationRecord(
                created_at=created_at,
                caller=self.caller,
                trace_id=self.trace_id,
                span_id=span_id,
                parent_id=parent_id,
                feature=self.feature,
                provider=settings.AI_PROVIDER,
                model=self.model,
                base_url=provider.base_url(),
                stream=self.streaming,
                step=step,
                usage=usage,
                cost=cost,
                latency_ms=latency_ms,
                time_to_first_token_ms=state.time_to_first_token_ms,
                http_status=next(
                    (a["status"] for a in reversed(attempts) if a.get("status")), None
                ),
                attempts=max(len(attempts), 1),
                is_error=bool(error),
                error=error,
                finish_reason=state.finish_reason or "",
                privacy_mode=self.privacy,
                tool_schemas=request.get("tools", []),
                properties=properties,
                input=request["messages"],
                output=output,
                cache_hit=cache_hit,
                saved_cost=saved_cost,
                estimated_input_tokens=estimate_tokens(request["messages"]),
                routing_reason=self.route.reason,
                flags=self.route.flags,
                variant=self.route.variant,
            )
        )

    def _record_span(
        self,
        *,
        span_id,
        parent_id,
        name,
        created_at,
        latency_ms,
        input_state,
        output_state,
        is_error=False,
        error="",
    ):
        recorder.submit(
            SpanRecord(
                created_at=created_at,
                caller=self.caller,
                trace_id=self.trace_id,
                span_id=span_id,
                parent_id=parent_id,
                name=name,
                feature=self.feature,
                latency_ms=latency_ms,
                is_error=is_error,
                error=error,
                privacy_mode=self.privacy,
                properties=self.properties,
                input_state=input_state,
                output_state=output_state,
            )
        )


class _CutStream(Exception):
    def __str__(self):
        return "the stream ended before the answer was complete"


class _StreamState:
    """What has arrived of one provider answer, streamed or whole."""

    def __init__(self):
        self.parts: list[str] = []
        self.tool_fragments: dict[int, dict] = {}
        self.usage: Usage | None = None
        self.usage_estimated = False
        self.finish_reason: str | None = None
        self.time_to_first_token_ms: float | None = None
        self.cost = None
        self.error = None
        self.answering = False  # the provider accepted the request and is streaming

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def take(self, chunk: dict, started: float) -> str:
        """Take one streamed chunk, as the JSON object the provider sent."""
        if chunk.get("usage"):
            self.usage = _usage_from(chunk["usage"])
        delta_text = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                delta_text += delta["content"]
            for fragment in delta.get("tool_calls") or ():
                slot = self.tool_fragments.setdefault(
                    fragment.get("index", 0), {"id": "", "name": "", "arguments": []}
                )
                function = fragment.get("function") or {}
                if fragment.get("id"):
                    slot["id"] = fragment["id"]
                if function.get("name"):
                    slot["name"] = function["name"]
                if function.get("arguments"):
                    slot["arguments"].append(function["arguments"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if (delta_text or self.tool_fragments) and self.time_to_first_token_ms is None:
            self.time_to_first_token_ms = (time.perf_counter() - started) * 1000
        if delta_text:
            self.parts.append(delta_text)
        return delta_text

    def take_completion(self, completion, started: float):
        choice = completion.choices[0]
        self.parts.append(choice.message.content or "")
        for index, call in enumerate(choice.message.tool_calls or ()):
            self.tool_fragments[index] = {
                "id": call.id,
                "name": call.function.name,
                "arguments": [call.function.arguments],
            }
        self.finish_reason = choice.finish_reason
        if completion.usage is not None:
            self.usage = _usage(completion.usage)

    def tool_calls(self) -> list[dict]:
        return [
            {
                "id": slot["id"],
                "type": "function",
                "function": {"name": slot["name"], "arguments": "".join(slot["arguments"])},
            }
            for _, slot in sorted(self.tool_fragments.items())
        ]


def _usage(reported) -> Usage:
    details = reported.prompt_tokens_details
    return Usage(
        input_tokens=reported.prompt_tokens or 0,
        output_tokens=reported.completion_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details else 0,
    )


def _usage_from(reported: dict) -> Usage:
    details = reported.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=reported.get("prompt_tokens") or 0,
        output_tokens=reported.get("completion_tokens") or 0,
        cached_tokens=details.get("cached_tokens") or 0,
    )


_DONE = object()


def _event_data(line: str):
    """The JSON object of one server-sent-events line; _DONE at the end; None for other lines.
    An error event mid-stream raises, like the SDK does."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    chunk = json.loads(data)
    if isinstance(chunk, dict) and chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise _StreamError(message or "the provider sent an error event")
    return chunk


class _StreamError(Exception):
    """The provider reported an error in the middle of a stream."""


def _assistant_message(text: str, tool_calls: list[dict]) -> dict:
    message: dict = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _describe_attempts(attempts: list[dict], error: str | None) -> str:
    statuses = ", ".join(str(a.get("status") or "no response") for a in attempts) or "none"
    return f"{error} ({len(attempts)} attempt(s): {statuses})"


def _with_system_prompt(messages: list[dict], system_prompt: str) -> list[dict]:
    """An experiment's system prompt replaces the app's (or leads when there is none)."""
    if not system_prompt:
        return list(messages)
    rest = [m for m in messages if m.get("role") != "system"]
    return [{"role": "system", "content": system_prompt}, *rest]


def _pieces(text: str, size: int = 24):
    """A cached answer, cut into stream-sized pieces at word boundaries."""
    piece = ""
    for word in text.split(" "):
        piece = f"{piece} {word}" if piece else word
        if len(piece) >= size:
            yield piece + " "
            piece = ""
    if piece:
        yield piece


def estimate_tokens(messages: list[dict]) -> int:
    """About four characters a token: the estimate made before a call, kept to compare."""
    characters = sum(len(str(m.get("content") or "")) for m in messages)
    return math.ceil(characters / 4)
