"""The exceptions apps get from iridium.ai. Each carries a message a person can read as it is."""

PROVIDER_BUSY = "The AI service is busy right now (rate limited). Please try again in a moment."
PROVIDER_FAILED = "The AI service had a problem answering. Please try again."
PROVIDER_TIMEOUT = "The AI service took too long to answer. Please try again."
PROVIDER_UNREACHABLE = "The AI service cannot be reached right now. Please try again later."
PROVIDER_CUT = "The answer was cut off by the AI service. Please try again."
PROVIDER_REJECTED = "The AI service could not process this request."


class AIError(Exception):
    """Base of every error iridium.ai raises; `str(error)` is safe to show to the user."""

    code = "ai_error"

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.message = message
        # For logs and the generation record, never shown to the user.
        self.detail = detail


class ProviderError(AIError):
    """The provider failed after the SDK's retries (or the total deadline passed)."""

    code = "provider_error"

    def __init__(self, message: str, *, detail: str = "", status: int | None = None):
        super().__init__(message, detail=detail)
        self.status = status


class ToolStepLimit(AIError):
    code = "tool_step_limit"


DAILY_LIMIT_REACHED = (
    "You have reached your plan's limit of {limit} AI requests for today. "
    "It resets at midnight UTC; upgrade your plan for more."
)
USER_BUDGET_REACHED = (
    "You have used this month's AI budget of your plan (${budget}). "
    "It renews on the 1st; upgrade your plan for more."
)
ORGANIZATION_BUDGET_REACHED = (
    "Your organization has used this month's AI budget (${budget}). Ask its admin to raise it."
)
AI_DISABLED = "AI features are switched off for the moment. Please try again later."


class LimitReached(AIError):
    """A plan's daily request limit or a monthly budget is used up: no call was made."""

    code = "limit_reached"


class AIDisabled(AIError):
    """The kill switch refuses AI calls."""

    code = "ai_disabled"
