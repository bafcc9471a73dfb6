"""One call through the service, as its steps share it: who it is for, the model chosen, what it
has spent, and the records it leaves (a generation per provider call or cache hit, a span per
tool run and per tool loop). Records go to the recorder, which writes them off the request path.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from . import provider, wire
from .recorder import recorder
from .records import Caller, GenerationRecord, SpanRecord, TraceRecord
from .routing import Route
from .types import Cost, Request, Usage

ZERO_COST = Cost(Decimal(0), Decimal(0), Decimal(0))


def new_span_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Call:
    request: Request
    streaming: bool
    caller: Caller
    privacy: bool
    properties: dict
    route: Route
    max_steps: int
    max_output_tokens: int
    # What the provider calls cost so far (None once a price is unknown).
    spent: Cost | None = ZERO_COST
    span_ids: list[str] = field(default_factory=list)
    # The browser's PostHog session id, validated (iridium.ai.replay): `$session_id` of every event.
    replay_session_id: str = ""

    @property
    def model(self) -> str:
        return self.route.model

    @property
    def feature(self) -> str:
        return self.request.feature

    @property
    def trace_id(self) -> str:
        return self.request.trace_id

    def add_spent(self, cost: Cost | None) -> None:
        self.spent = self.spent + cost if (self.spent is not None and cost is not None) else None

    def record_generation(
        self,
        *,
        created_at: datetime,
        span_id: str,
        parent_id: str,
        step: int,
        body: dict,
        answer: wire.Answer,
        usage: Usage,
        usage_estimated: bool,
        cost: Cost | None,
        latency_ms: float,
        attempts: list[dict],
        error: str,
        cache_hit: bool = False,
        saved_cost: Decimal | None = None,
        in_flight: bool = False,
        reserved_cost: Decimal | None = None,
        submit: bool = True,
        exception: BaseException | None = None,
    ) -> GenerationRecord:
        """The generation record of a provider call (or cache hit), submitted to the recorder
        unless `submit` is false. A record `in_flight` is the call's row as it starts."""
        properties = {**self.properties, "usageEstimated": True} if usage_estimated else None
        record = GenerationRecord(
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
            time_to_first_token_ms=answer.time_to_first_token_ms,
            http_status=next((a["status"] for a in reversed(attempts) if a.get("status")), None),
            attempts=max(len(attempts), 1),
            is_error=bool(error),
            error=error,
            finish_reason=answer.finish_reason or "",
            privacy_mode=self.privacy,
            tool_schemas=body.get("tools", []),
            properties=properties or self.properties,
            input=body["messages"],
            output=[answer.message()] if answer.produced else None,
            cache_hit=cache_hit,
            saved_cost=saved_cost,
            estimated_input_tokens=wire.estimate_tokens(wire.message_characters(body["messages"])),
            routing_reason=self.route.reason,
            flags=self.route.flags,
            variant=self.route.variant,
            session_id=self.request.ai_session_id,
            in_flight=in_flight,
            reserved_cost=reserved_cost,
            exception=exception,
            replay_session_id=self.replay_session_id,
        )
        if submit:
            recorder.submit(record)
        return record

    def record_span(
        self,
        *,
        span_id: str,
        parent_id: str,
        name: str,
        created_at: datetime,
        latency_ms: float,
        input_state,
        output_state,
        is_error: bool = False,
        error: str = "",
    ) -> None:
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
                replay_session_id=self.replay_session_id,
                session_id=self.request.ai_session_id,
            )
        )

    def record_trace(self, *, latency_ms: float, output_text: str | None, error: str = "") -> None:
        """The turn as a whole (`$ai_trace`): its input is what the person added since the last
        answer, its output the answer (content only outside privacy mode)."""
        recorder.submit(
            TraceRecord(
                caller=self.caller,
                trace_id=self.trace_id,
                session_id=self.request.ai_session_id,
                replay_session_id=self.replay_session_id,
                name=self.feature,
                latency_ms=latency_ms,
                is_error=bool(error),
                error=error,
                privacy_mode=self.privacy,
                properties={**self.properties, **self.route_properties()},
                input_state=turn_input(self.request.messages),
                output_state=(
                    [{"role": "assistant", "content": output_text}]
                    if output_text is not None
                    else None
                ),
            )
        )

    def route_properties(self) -> dict:
        """The flags that decided the call, as PostHog's `$feature/<key>` properties."""
        return {f"$feature/{key}": value for key, value in self.route.flags.items()}


def turn_input(messages) -> list[dict]:
    """A turn's own input: the messages after the last answer (the question, a ticket's new
    message), without the system prompt; the window before them belongs to earlier turns."""
    turn: list[dict] = []
    for message in reversed(list(messages)):
        if message.get("role") in ("assistant", "system"):
            break
        turn.append(message)
    return turn[::-1]
