"""iridium.ai: the one door every app uses to reach an LLM.

    from iridium import ai

    request = ai.Request(user=user, feature="chat", messages=messages,
                         trace_id=f"conversation-{conversation.pk}", tools=[...])
    async for event in ai.stream(request):
        ...  # ai.TextDelta, ai.ToolCalled, then ai.Completion

    completion = await ai.complete(ai.Request(user=user, feature="code-generation", ...))

`ai.replay.current()` is the browser's PostHog session id for the request or frame being
handled, for `Request.replay_session_id` (iridium.ai.replay).

Errors are `ai.AIError` subclasses whose message can be shown to the user as it is: `ai.Refused`
(`ai.LimitReached`, `ai.AIDisabled`) before any call was made, `ai.ProviderError` after.
"""

from . import replay
from .errors import AIDisabled, AIError, LimitReached, ProviderError, Refused, TooManyInFlight
from .types import (
    CHOSEN_MODEL,
    Completion,
    Cost,
    Request,
    TextDelta,
    Tool,
    ToolCalled,
    ToolContext,
    ToolFailed,
    Usage,
)
from .wire import estimate_tokens

__all__ = [
    "CHOSEN_MODEL",
    "AIDisabled",
    "AIError",
    "Completion",
    "Cost",
    "LimitReached",
    "ProviderError",
    "Refused",
    "Request",
    "TextDelta",
    "TooManyInFlight",
    "Tool",
    "ToolCalled",
    "ToolContext",
    "ToolFailed",
    "Usage",
    "complete",
    "estimate_tokens",
    "replay",
    "standing",
    "stream",
]


def __getattr__(name):
    # The service imports models; loading it lazily keeps `iridium.ai` importable from settings
    # and app registries before Django is ready.
    if name in ("stream", "complete"):
        from . import service

        return getattr(service, name)
    if name == "standing":  # where a person stands against their plan (requests, spend)
        from .budgets import standing

        return standing
    raise AttributeError(name)
