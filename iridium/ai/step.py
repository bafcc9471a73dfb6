"""One provider call: its reservation against budgets and limits, the request through the SDK
(its retries, each attempt counted), the service's deadline, the answer read as it streams, the
SDK's errors mapped to errors a person can read, and the generation recorded when the call
starts and again however it ends (complete, failed or cancelled), when the reservation is
settled to what the call cost."""

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from decimal import Decimal

import openai
from django.conf import settings
from django.utils import timezone

from . import budgets, errors, pricing, provider, recovery, wire
from .call import Call, new_span_id
from .recorder import recorder
from .types import Cost, TextDelta, Usage

logger = logging.getLogger(__name__)

# A reservation's input estimate (four characters a token) allows for this much more, since
# tokenisers count some text (code, other scripts) at fewer characters a token.
RESERVE_INPUT_MARGIN = 1.25


@dataclass
class StepResult:
    """The last item a step yields, after its `TextDelta`s."""

    text: str
    tool_calls: list[dict]
    usage: Usage
    cost: Cost | None
    finish_reason: str


async def provider_step(call: Call, conversation: list[dict], step: int, parent_id: str):
    """Yield the answer's `TextDelta`s as they arrive, then its `StepResult`; raise
    `errors.ProviderError` when the provider fails (after the SDK's retries)."""
    tools = list(call.request.tools)
    body = wire.build_request(
        model=call.model,
        messages=conversation,
        parameters=wire.parameters(
            temperature=call.request.temperature, max_output_tokens=call.max_output_tokens
        ),
        tools=tools,
        allow_tools=bool(tools) and step < call.max_steps,
        streaming=call.streaming,
    )
    span_id = new_span_id()
    created_at = timezone.now()
    started = time.perf_counter()
    answer = wire.Answer(started)
    most = _most_cost(call, body)
    start = _start_record(call, created_at, span_id, parent_id, step, body, answer, most)
    # Beaten by this worker's heartbeat from now until it ends, whether or not tokens arrive.
    recovery.alive(span_id, lambda: wire.estimate_tokens(answer.characters))
    try:
        reservation = await budgets.reserve(
            call.caller, span_id=span_id, first=step == 1, amount=most, start_row=start.to_row
        )
    except errors.LimitReached as refusal:
        recovery.forget(span_id)  # not admitted: no call
        if step == 1:
            raise
        # Between two steps of an answer: it ends here, keeping what it has.
        raise errors.StoppedByLimit(
            errors.BUDGET_REACHED_DURING_ANSWER, detail=str(refusal)
        ) from refusal
    except BaseException:
        recovery.forget(span_id)
        raise
    call.span_ids.append(span_id)
    if reservation is None or not reservation.row_written:
        recorder.submit(start)  # the call's row exists from now on, whatever happens to us
    attempts: list[dict] = []
    token = provider.current_attempts.set(attempts)
    outcome, error_text, failure = "error", "", None
    try:
        if call.streaming:
            # The SDK makes the request (auth, retries, errors); the event stream is read line
            # by line (iridium.ai.wire).
            async with asyncio.timeout(settings.AI_DEADLINE_SECONDS):
                response = await provider.stream(body)
            try:
                answer.answering = True
                async for line in provider.lines(response):
                    chunk = wire.event_data(line)
                    if chunk is None:
                        continue
                    if chunk is wire.DONE:
                        break
                    delta_text = answer.take(chunk)
                    if delta_text:
                        yield TextDelta(delta_text)
            finally:
                await response.close()
            if answer.finish_reason is None:
                raise wire.CutStream()
        else:
            async with asyncio.timeout(settings.AI_DEADLINE_SECONDS):
                completion = await provider.complete(body)
            answer.take_whole(completion)
        outcome = "ok"
    except (GeneratorExit, asyncio.CancelledError):
        outcome = "cancelled"
        answer.finish_reason = "cancelled"
        raise
    except Exception as error:
        failure = error
        detail = error_detail(error, private=call.privacy)
        error_text = _describe_attempts(attempts, detail)
        raise _provider_error(call, error, attempts, answer, detail) from error
    finally:
        provider.current_attempts.reset(token)
        usage, estimated = answer.usage, False
        if usage is None:
            # The provider reports usage only at the end of a complete stream; for a stopped or
            # cut answer it is estimated, and marked as estimated.
            estimated = answer.produced
            usage = wire.estimate_usage(conversation, answer.text) if estimated else Usage()
        cost = pricing.price(provider=settings.AI_PROVIDER, model=call.model, usage=usage)
        call.add_spent(cost)
        spent = cost.total_usd if cost is not None else None
        seconds = time.perf_counter() - started
        charged = await recovery.ended(span_id, seconds=seconds, cost=spent)
        if charged is not None:
            # Another worker took the call for dead and charged its estimate: only the
            # difference is spent now (iridium.ai.recovery).
            await budgets.settle(reservation, (spent or Decimal(0)) - charged)
        elif outcome == "error" and step == 1 and not answer.answering:
            await budgets.release(reservation)  # no answer: nothing spent, and not a request
        else:
            await budgets.settle(reservation, cost.total_usd if cost is not None else None)
        call.record_generation(
            created_at=created_at,
            span_id=span_id,
            parent_id=parent_id,
            step=step,
            body=body,
            answer=answer,
            usage=usage,
            usage_estimated=estimated,
            cost=cost,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=attempts,
            error=error_text if outcome == "error" else "",
            reserved_cost=most,
            exception=failure,
        )
    yield StepResult(
        text=answer.text,
        tool_calls=answer.tool_calls(),
        usage=usage,
        cost=cost,
        finish_reason=answer.finish_reason or "stop",
    )


def error_detail(error: BaseException, *, private: bool) -> str:
    """What is recorded and logged of an error. A provider's error message may repeat the input
    (a rejected prompt, say), so in privacy mode only its type and HTTP status are kept."""
    status = getattr(error, "status_code", None)
    if private:
        return type(error).__name__ + (f" (HTTP {status})" if status else "")
    return f"{type(error).__name__}: {error}"


def _most_cost(call: Call, body: dict) -> Decimal | None:
    """The most the call can cost: its input (estimated, with a margin, tool schemas included)
    and the output cap, at the model's price; None when the model has no price."""
    characters = wire.message_characters(body["messages"]) + len(str(body.get("tools", "")))
    usage = Usage(
        input_tokens=math.ceil(wire.estimate_tokens(characters) * RESERVE_INPUT_MARGIN),
        output_tokens=call.max_output_tokens,
    )
    cost = pricing.price(provider=settings.AI_PROVIDER, model=call.model, usage=usage)
    return cost.total_usd if cost is not None else None


def _start_record(call, created_at, span_id, parent_id, step, body, answer, most):
    return call.record_generation(
        created_at=created_at,
        span_id=span_id,
        parent_id=parent_id,
        step=step,
        body=body,
        answer=answer,
        usage=Usage(),
        usage_estimated=False,
        cost=None,
        latency_ms=0.0,
        attempts=[],
        error="",
        in_flight=True,
        reserved_cost=most,
        submit=False,
    )


def _provider_error(call, error, attempts, answer, detail) -> errors.ProviderError:
    status = getattr(error, "status_code", None)
    if isinstance(error, wire.CutStream | wire.StreamError) or answer.answering:
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
        call.feature,
        call.model,
        call.trace_id,
        len(attempts),
        detail,
    )
    return errors.ProviderError(message, detail=detail, status=status)


def _describe_attempts(attempts: list[dict], error: str) -> str:
    statuses = ", ".join(str(a.get("status") or "no response") for a in attempts) or "none"
    return f"{error} ({len(attempts)} attempt(s): {statuses})"
