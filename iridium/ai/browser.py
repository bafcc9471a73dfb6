"""What the page's posthog-js is told (static/js/analytics.js): the public web key and where
PostHog is, who the person is, and how much of the page a session replay may show.

The person is identified with the distinct id the server's events carry for them
(`records.Caller.distinct_id`: their id, or the pseudonym where their plan requires it), so
that their pageviews and replays join their AI calls. Without POSTHOG_WEB_KEY there is nothing
to tell, and the layout loads no PostHog script at all.
"""

from urllib.parse import urlsplit

from django.conf import settings

from .records import Caller

# Replay masks every text input (posthog-js's default, kept explicitly) and the text of what
# people and the assistant wrote: messages, and whatever a template marks `data-replay-mask`
# (titles made from a question, lists of conversations, tickets and creations, transcripts),
# and the page's title. Plans in privacy mode get every text masked.
CONVERSATION_TEXT = "title, .message, [data-replay-mask]"
ALL_TEXT = "*"


def web_host() -> str:
    return (settings.POSTHOG_WEB_HOST or settings.POSTHOG_HOST).rstrip("/")


def web_origin() -> str:
    """The origin the page sends PostHog's requests to (for the CSP's connect-src), or ""."""
    if not settings.POSTHOG_WEB_KEY:
        return ""
    parts = urlsplit(web_host())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def config(user) -> dict | None:
    """posthog-js's settings for a page seen by `user` (signed in or not); None without a key."""
    if not settings.POSTHOG_WEB_KEY:
        return None
    signed_in = user is not None and user.is_authenticated
    plan = user.effective_plan if signed_in else None
    private = bool(plan and plan.privacy_mode_forced)
    return {
        "key": settings.POSTHOG_WEB_KEY,
        "apiHost": web_host(),
        "uiHost": settings.POSTHOG_WEB_UI_HOST or None,
        # The trace id names the caller of anonymous calls only: a signed-in user has one id.
        "distinctId": Caller(user=user, organization_id=None, plan=plan).distinct_id("")
        if signed_in
        else None,
        "organization": str(user.organization_id) if signed_in and user.organization_id else None,
        "maskTextSelector": ALL_TEXT if private else CONVERSATION_TEXT,
    }
