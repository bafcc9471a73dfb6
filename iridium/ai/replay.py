"""The browser's PostHog session id, which links an AI call to the replay of the page that
started it (PostHog's LLM trace shows a link to the recording when each `$ai_generation` and
`$ai_span` carries it as `$session_id`).

It comes from the page, so it is untrusted: posthog-js makes session ids as UUIDs (v7); any
other value (too long, other characters) is ignored, never an error for the person.

It reaches the service in the `replay_session_id` of an `ai.Request`, which apps fill with
`current()`: the session id of PostHog's context for this request. posthog-python's Django
middleware (`posthog.integrations.django.PosthogContextMiddleware`) opens that context for an
HTTP request from its `X-POSTHOG-SESSION-ID` header; `session_context()` opens one for a
websocket frame (iridium.live.consumers), for which PostHog has no integration.

The session id is no content (it says nothing of what was typed or answered), so it is sent in
privacy mode too.
"""

import re
from contextlib import contextmanager

from posthog import contexts

# A UUID as posthog-js writes it (lowercase, hyphenated); upper case is taken and lowered.
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_CHARS = 36


def valid(value) -> str:
    """`value` as a session id, or "" when it is not one."""
    if not isinstance(value, str) or len(value) > MAX_CHARS:
        return ""
    value = value.lower()
    return value if _SESSION_ID.fullmatch(value) else ""


def current() -> str:
    """The valid session id of PostHog's context for this request or frame, or ""."""
    return valid(contexts.get_context_session_id())


@contextmanager
def session_context(session_id):
    """PostHog's context for one piece of work started by a page (a websocket frame): a fresh
    one, without automatic exception capture (the service reports a call's errors itself),
    holding `session_id` when it is valid."""
    with contexts.new_context(fresh=True, capture_exceptions=False):
        session_id = valid(session_id)
        if session_id:
            contexts.set_context_session(session_id)
        yield
