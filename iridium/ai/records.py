"""What the service knows about one provider call or tool step, turned into a row and an event.

Building these is cheap; writing the row and sending the event happen in the recorder's thread,
so neither adds to what the user waits for.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from iridium.infra.text import storable, storable_json

from .models import Generation, Span
from .pseudonyms import pseudonym
from .types import Cost, Usage

# The finish of a call completed by iridium.ai.recovery: its worker was taken for dead.
INTERRUPTED_FINISH = "interrupted"


@dataclass
class Caller:
    """Who a call is for, resolved once per call."""

    user: Any  # a User, or None when anonymous
    organization_id: int | None
    plan: Any  # the effective Plan

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    def distinct_id(self, trace_id: str) -> str:
        # Anonymous calls are attributed to their trace, without a person profile; plans that
        # require it know their users to PostHog only by a pseudonym.
        if self.user is None:
            return trace_id
        if self.plan is not None and self.plan.slug in settings.ANALYTICS_PSEUDONYMOUS_PLANS:
            return pseudonym(self.user.pk)
        return str(self.user.pk)

    @property
    def groups(self) -> dict:
        return {"company": str(self.organization_id)} if self.organization_id else {}


@dataclass
class GenerationRecord:
    created_at: datetime
    caller: Caller
    trace_id: str
    span_id: str
    parent_id: str
    feature: str
    provider: str
    model: str
    base_url: str
    stream: bool
    step: int
    usage: Usage
    cost: Cost | None
    latency_ms: float
    time_to_first_token_ms: float | None
    http_status: int | None
    attempts: int
    is_error: bool
    error: str
    finish_reason: str
    privacy_mode: bool
    tool_schemas: list[dict]
    properties: dict
    input: list | None
    output: list | None
    cache_hit: bool = False
    saved_cost: Decimal | None = None
    estimated_input_tokens: int | None = None
    routing_reason: str = ""
    flags: dict = field(default_factory=dict)
    variant: str = ""
    session_id: str = ""  # the turns' group (a conversation, a ticket): $ai_session_id
    # Written when the call starts (and completed when it ends): see Generation.in_flight.
    in_flight: bool = False
    reserved_cost: Decimal | None = None
    # The exception that failed the call, for PostHog's error tracking (never stored).
    exception: BaseException | None = field(default=None, repr=False)
    # The browser's PostHog session id (iridium.ai.replay), sent as `$session_id`.
    replay_session_id: str = ""
    # Its row is written already (iridium.ai.recovery): the recorder only sends its event.
    row_written: bool = False

    def to_row(self) -> Generation:
        cost = self.cost
        return Generation(
            created_at=self.created_at,
            trace_id=self.trace_id,
            session_id=self.session_id,
            span_id=self.span_id,
            parent_id=self.parent_id,
            user_id=self.caller.user_id,
            organization_id=self.caller.organization_id,
            plan_id=self.caller.plan.pk if self.caller.plan else None,
            feature=self.feature,
            provider=self.provider,
            model=self.model,
            base_url=self.base_url,
            stream=self.stream,
            step=self.step,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cached_tokens=self.usage.cached_tokens,
            input_cost_usd=cost.input_usd if cost else None,
            output_cost_usd=cost.output_usd if cost else None,
            total_cost_usd=cost.total_usd if cost else None,
            latency_ms=self.latency_ms,
            time_to_first_token_ms=self.time_to_first_token_ms,
            http_status=self.http_status,
            attempts=self.attempts,
            is_error=self.is_error,
            error=storable(self.error),
            finish_reason=self.finish_reason,
            privacy_mode=self.privacy_mode,
            tools=storable_json([schema["function"]["name"] for schema in self.tool_schemas]),
            properties=storable_json(self.properties),
            # PostgreSQL takes neither NUL nor a lone surrogate, which models and people do send.
            input=None if self.privacy_mode else storable_json(self.input),
            output=None if self.privacy_mode else storable_json(self.output),
            cache_hit=self.cache_hit,
            saved_cost_usd=self.saved_cost,
            estimated_input_tokens=self.estimated_input_tokens,
            estimate_ratio=(
                self.usage.input_tokens / self.estimated_input_tokens
                if self.estimated_input_tokens and self.usage.input_tokens and not self.cache_hit
                else None
            ),
            routing_reason=self.routing_reason,
            flags=self.flags,
            variant=self.variant,
            in_flight=self.in_flight,
            reserved_cost_usd=self.reserved_cost,
            heartbeat_at=self.created_at if self.in_flight else None,
        )

    def to_exception(self) -> dict | None:
        """The call's exception for PostHog's error tracking, linked to the call by its trace
        and span ids (PostHog's LLM view links an error to its stack trace by `$ai_trace_id`).
        None without one, and in privacy mode: an exception's message may quote the prompt."""
        if self.exception is None or self.privacy_mode:
            return None
        properties = {
            **self.properties,
            "$ai_trace_id": self.trace_id,
            "$ai_span_id": self.span_id,
            "$ai_model": self.model,
            "$ai_provider": self.provider,
            "$ai_http_status": self.http_status or 0,
        }
        event = _event("$exception", self.caller, self.trace_id, properties, self.replay_session_id)
        return {**event, "exception": self.exception}

    def to_event(self) -> dict:
        """`$ai_generation` with PostHog's documented property names, or `ai_cache_hit`."""
        flag_properties = {f"$feature/{key}": value for key, value in self.flags.items()}
        if self.cache_hit:
            properties = {
                **self.properties,
                **flag_properties,
                "model": self.model,
                "saved_cost_usd": float(self.saved_cost) if self.saved_cost is not None else None,
                "$ai_trace_id": self.trace_id,
            }
            return _event(
                "ai_cache_hit", self.caller, self.trace_id, properties, self.replay_session_id
            )
        properties = {
            **flag_properties,
            **self.properties,
            "$ai_trace_id": self.trace_id,
            **_session(self.session_id),
            "$ai_span_id": self.span_id,
            "$ai_span_name": self.feature,
            "$ai_parent_id": self.parent_id or self.trace_id,
            "$ai_provider": self.provider,
            "$ai_model": self.model,
            "$ai_base_url": self.base_url,
            "$ai_stream": self.stream,
            "$ai_input_tokens": self.usage.input_tokens,
            "$ai_output_tokens": self.usage.output_tokens,
            "$ai_cache_read_input_tokens": self.usage.cached_tokens,
            "$ai_latency": self.latency_ms / 1000,
            "$ai_http_status": self.http_status or 0,
            "$ai_is_error": self.is_error,
        }
        if self.time_to_first_token_ms is not None:
            properties["$ai_time_to_first_token"] = self.time_to_first_token_ms / 1000
        if self.cost is not None:
            properties["$ai_input_cost_usd"] = float(self.cost.input_usd)
            properties["$ai_output_cost_usd"] = float(self.cost.output_usd)
            properties["$ai_total_cost_usd"] = float(self.cost.total_usd)
        if self.is_error:
            properties["$ai_error"] = self.error
        if self.tool_schemas:
            properties["$ai_tools"] = self.tool_schemas
        if not self.privacy_mode:
            properties["$ai_input"] = self.input
            if self.output is not None:
                properties["$ai_output_choices"] = self.output
        return _event(
            "$ai_generation", self.caller, self.trace_id, properties, self.replay_session_id
        )


@dataclass
class SpanRecord:
    created_at: datetime
    caller: Caller
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    feature: str
    latency_ms: float
    is_error: bool
    error: str
    privacy_mode: bool
    properties: dict
    input_state: Any
    output_state: Any
    replay_session_id: str = ""
    session_id: str = ""

    def to_row(self) -> Span:
        return Span(
            created_at=self.created_at,
            trace_id=self.trace_id,
            session_id=self.session_id,
            span_id=self.span_id,
            parent_id=self.parent_id,
            name=self.name,
            user_id=self.caller.user_id,
            feature=self.feature,
            latency_ms=self.latency_ms,
            is_error=self.is_error,
            error=storable(self.error),
            privacy_mode=self.privacy_mode,
            input_state=None if self.privacy_mode else storable_json(self.input_state),
            output_state=None if self.privacy_mode else storable_json(self.output_state),
        )

    def to_event(self) -> dict:
        properties = {
            **self.properties,
            "$ai_trace_id": self.trace_id,
            **_session(self.session_id),
            "$ai_span_id": self.span_id,
            "$ai_span_name": self.name,
            "$ai_parent_id": self.parent_id or self.trace_id,
            "$ai_latency": self.latency_ms / 1000,
            "$ai_is_error": self.is_error,
        }
        if self.is_error:
            properties["$ai_error"] = self.error
        if not self.privacy_mode:
            properties["$ai_input_state"] = self.input_state
            properties["$ai_output_state"] = self.output_state
        return _event("$ai_span", self.caller, self.trace_id, properties, self.replay_session_id)


@dataclass
class TraceRecord:
    """One turn (an answer with its tool steps and provider calls) as a whole: PostHog's
    `$ai_trace`, grouped with the other turns of its conversation or ticket by `$ai_session_id`.
    Its figures are the sums of its generations' rows, so it is sent, not stored."""

    caller: Caller
    trace_id: str
    session_id: str
    name: str
    latency_ms: float
    is_error: bool
    error: str
    privacy_mode: bool
    properties: dict
    input_state: Any
    output_state: Any
    replay_session_id: str = ""

    def to_event(self) -> dict:
        properties = {
            **self.properties,
            "$ai_trace_id": self.trace_id,
            **_session(self.session_id),
            "$ai_span_name": self.name,
            "$ai_latency": self.latency_ms / 1000,
            "$ai_is_error": self.is_error,
        }
        if self.is_error:
            properties["$ai_error"] = self.error
        if not self.privacy_mode:
            properties["$ai_input_state"] = self.input_state
            if self.output_state is not None:  # a turn that failed before any word has none
                properties["$ai_output_state"] = self.output_state
        return _event("$ai_trace", self.caller, self.trace_id, properties, self.replay_session_id)


def _session(session_id: str) -> dict:
    return {"$ai_session_id": session_id} if session_id else {}


def _event(
    name: str, caller: Caller, trace_id: str, properties: dict, replay_session_id: str = ""
) -> dict:
    if caller.user is None:
        properties["$process_person_profile"] = False
    if replay_session_id:
        # Not content: sent in privacy mode too (iridium.ai.replay).
        properties["$session_id"] = replay_session_id
    return {
        "event": name,
        "distinct_id": caller.distinct_id(trace_id),
        "properties": properties,
        "groups": caller.groups,
    }
