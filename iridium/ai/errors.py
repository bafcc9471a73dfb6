"""The exceptions apps get from iridium.ai. Each carries a message a person can read as it is,
and a code; the edges (websocket, HTTP) map them like every other domain error."""

from iridium.infra.errors import DomainError

PROVIDER_BUSY = "The AI service is busy right now (rate limited). Please try again in a moment."
PROVIDER_FAILED = "The AI service had a problem answering. Please try again."
PROVIDER_TIMEOUT = "The AI service took too long to answer. Please try again."
PROVIDER_UNREACHABLE = "The AI service cannot be reached right now. Please try again later."
PROVIDER_CUT = "The answer was cut off by the AI service. Please try again."
PROVIDER_REJECTED = "The AI service could not process this request."


class AIError(DomainError):
    """Base of every error iridium.ai raises; `str(error)` is safe to show to the user."""

    code = "ai_error"
    http_status = 503

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        # For logs and the generation record, never shown to the user.
        self.detail = detail


class ProviderError(AIError):
    """The provider failed after the SDK's retries (or the total deadline passed)."""

    code = "provider_error"
    http_status = 502

    def __init__(self, message: str, *, detail: str = "", status: int | None = None):
        super().__init__(message, detail=detail)
        self.status = status


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
TOO_MANY_IN_FLIGHT = (
    "You already have {limit} answers being written. Wait for one of them to finish, or stop it."
)
BUDGET_REACHED_DURING_ANSWER = (
    "The answer stopped here: its next step would go over your AI budget or limit."
)
AI_DISABLED = "AI features are switched off for the moment. Please try again later."


class Refused(AIError):
    """The service refused the call before making it: nothing was asked of the provider."""

    code = "refused"


class LimitReached(Refused):
    """A plan's daily request limit or a monthly budget is used up: no call was made."""

    code = "limit_reached"
    http_status = 429


class TooManyInFlight(LimitReached):
    """The plan's number of answers in flight for one user is reached."""

    code = "too_many_in_flight"


class StoppedByLimit(ProviderError):
    """A limit or budget was reached between two steps of an answer's tool loop: the answer
    ends there, keeping what it has."""

    code = "limit_reached"
    http_status = 429


class AIDisabled(Refused):
    """The kill switch refuses AI calls."""

    code = "ai_disabled"
