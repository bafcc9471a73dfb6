"""What apps hand to iridium.ai and what they get back."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Complexity = Literal["simple", "advanced"]


class _ChosenModel:
    """Put in an app's properties where the model the service chose should go (`modelUsed`):
    apps never choose the model, but may want it among their properties."""

    def __repr__(self):
        return "CHOSEN_MODEL"


CHOSEN_MODEL = _ChosenModel()


@dataclass(frozen=True)
class ToolContext:
    """Who a tool acts for. Tools must use this user, never one named in the model's arguments."""

    user: Any  # the signed-in user, or None for anonymous calls
    trace_id: str
    feature: str


@dataclass(frozen=True)
class Tool:
    """A function the model may call: a JSON schema for its arguments and an async executor.

    `run(arguments, context)` returns something JSON-serialisable; raising `ToolFailed` hands the
    model an error message instead of a result.
    """

    name: str
    description: str
    parameters: dict
    run: Callable[[dict, ToolContext], Awaitable[Any]]

    def schema(self) -> dict:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolFailed(Exception):
    """Raised by a tool executor: the message is given to the model as the tool's result."""


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # includes cached tokens, as OpenAI counts them
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True)
class Cost:
    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(
            self.input_usd + other.input_usd,
            self.output_usd + other.output_usd,
            self.total_usd + other.total_usd,
        )


@dataclass(frozen=True)
class Request:
    """What an app asks of the service: who, for which feature, the messages, and the policy.
    Never which model: the service chooses it (by plan, flags, experiments and `complexity`).

    `cache`: True to answer an identical request of the same user from the cache (for the
    feature's TTL), a number of seconds for another TTL; tool-using calls are never cached.
    `privacy`: keep prompt and answer out of analytics (also forced by the plan or the feature).
    `properties`: the app's own event properties (camelCase, as PostHog's examples write them).
    `private_properties`: properties that hold what a person typed (a framework's name, say):
    they join the others only when the call is not in privacy mode, since in privacy mode
    nothing a person wrote leaves the app's own tables.
    `replay_session_id`: the browser's PostHog session id of the page that started the call
    (`ai.replay.current()`), sent as `$session_id` on every event of the call so that PostHog
    links the trace to the page's replay; an invalid one is ignored.
    `trace_id`: this turn's trace (one answer with its tool steps and provider calls);
    `ai_session_id`: what groups the turns' traces (a conversation, a ticket), PostHog's
    `$ai_session_id`; empty for a call that stands alone.
    """

    user: Any  # the signed-in user, or None for anonymous calls
    feature: str
    messages: Sequence[dict]
    trace_id: str
    ai_session_id: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    private_properties: Mapping[str, Any] = field(default_factory=dict)
    tools: Sequence[Tool] = ()
    max_steps: int | None = None
    privacy: bool = False
    complexity: Complexity = "simple"
    cache: bool | int | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    replay_session_id: str = ""


# --- Events of a streamed call ----------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCalled:
    """The model called a tool and the service ran it."""

    name: str
    arguments: dict
    result: Any
    is_error: bool = False


@dataclass(frozen=True)
class Completion:
    """The whole answer, the last event of a stream and the result of `complete()`."""

    text: str
    model: str
    trace_id: str
    usage: Usage
    cost: Cost | None  # None when a model's price is unknown
    steps: int
    tool_calls: list[ToolCalled] = field(default_factory=list)
    finish_reason: str = "stop"
    span_ids: list[str] = field(default_factory=list)
    from_cache: bool = False
    saved_cost: Decimal | None = None  # what a cached answer would have cost
