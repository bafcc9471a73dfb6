"""The public demo: a visitor tries the assistant from the home page, without an account.

- Off with `PUBLIC_DEMO=false`: the home page shows no demo and the socket closes at once
  (`CLOSE_FORBIDDEN`).
- The conversation lives in the page and in its socket only: nothing of it is written to our
  tables (no conversation, no message). The AI service keeps its usual record of each call
  (model, tokens, cost, for the install's spend and analytics), in privacy mode: no prompt and
  no answer in the row or in PostHog.
- Calls are anonymous (`ai.Request(user=None, ...)`): the service answers with the plan of
  anonymous callers (`DEFAULT_PLAN_SLUG`, whose everyday model is the cheapest), and PostHog
  gets them with the trace id as distinct id and no person profile. Feature `public-demo`,
  property `source: landing-page`; no tools; at most `PUBLIC_DEMO_MAX_OUTPUT_TOKENS` tokens.
- Limits, counted with django-ratelimit (the house's throttling, as sign-up is): per visitor
  (their browser session, `PUBLIC_DEMO_VISITOR_RATE`), per address (`REMOTE_ADDR` as the
  server gives it, i.e. trusting proxies only as the server is told to;
  `PUBLIC_DEMO_ADDRESS_RATE`) and for the whole install (`PUBLIC_DEMO_DAILY_CALLS` a day: the
  operator's cap on what the demo may cost). A refusal says so and invites the visitor to sign
  up. Unlike sign-up, the demo fails closed: while the counters cannot be read, it refuses.
- The socket is behind the site's origin check (`iridium.web.sockets.SameOriginValidator`) like
  every socket; it takes only sessions the demo started (`start`, a POST under CSRF protection
  before the page's first question), so the per-visitor count cannot be dodged by inventing
  session ids.

Frames are iridium.live.protocol's: the page sends `send {content}`, and gets `ready`,
`answer_started`, `delta`, `answer_finished` (the answer's HTML rendered by the server's one
Markdown renderer), `refused` or `error`; `static/js/public-demo.js` speaks them.
"""

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from iridium import ai
from iridium.infra.errors import DomainError
from iridium.live import protocol
from iridium.live.rendering import render_markdown

logger = logging.getLogger(__name__)

FEATURE = "public-demo"
SOURCE = "landing-page"
# Set in a visitor's session by `start`: the socket serves only such sessions.
SESSION_MARK = "public_demo"
# Messages of the conversation sent back to the model (the latest ones).
HISTORY_MESSAGES = 8

SYSTEM_PROMPT = (
    "You are Iridium's assistant, answering a visitor who is trying Iridium on its home page "
    "without an account. Answer briefly and helpfully in Markdown. You have no tools here."
)

VISITOR_LIMIT = "You have used today's free demo questions. Sign up to keep going: it is free."
ADDRESS_LIMIT = (
    "Today's free demo questions from your network are used up. Sign up to keep going: it is free."
)
INSTALL_LIMIT = "The demo has answered all the questions it can today. Sign up to keep going."
UNAVAILABLE = "The demo is resting for a moment. Try again soon, or sign up: it is free."
BUSY = "Wait for this answer to finish."
COULD_NOT_FINISH = "Something went wrong while answering. Please try again."


class DemoLimited(DomainError):
    code = "demo_limit"
    http_status = 429


class Busy(DomainError):
    code = "busy"
    http_status = 409


def enabled() -> bool:
    return bool(settings.PUBLIC_DEMO)


@require_POST
def start(request):
    """Called by the page before its first question: marks the visitor's session as one the
    demo serves, which gives them a session (a cookie and a session row) only once they ask,
    not on every visit of the home page. 404 while the demo is off."""
    if not enabled():
        raise Http404("The public demo is off.")
    if not request.session.get(SESSION_MARK):
        request.session[SESSION_MARK] = True
    return HttpResponse(status=204)


# --- Limits -----------------------------------------------------------------------------------


def _limits(session_key: str) -> list[tuple[str, object, str, str]]:
    """(group, key, rate, message) of each limit, the visitor's first."""
    return [
        ("public-demo.visitor", lambda group, request: session_key,
         settings.PUBLIC_DEMO_VISITOR_RATE, VISITOR_LIMIT),
        ("public-demo.address", "ip", settings.PUBLIC_DEMO_ADDRESS_RATE, ADDRESS_LIMIT),
        ("public-demo.install", lambda group, request: "all",
         f"{settings.PUBLIC_DEMO_DAILY_CALLS}/d", INSTALL_LIMIT),
    ]  # fmt: skip


def take_a_question(*, session_key: str, address: str) -> None:
    """Count one question against each limit, or raise `DemoLimited` naming the first one
    reached (the ones after it are not counted). The demo's limits are what caps what it costs,
    so it fails closed: while the counters cannot be read (Redis away), it answers nobody."""
    request = HttpRequest()  # django-ratelimit reads the address from a request's META
    request.method = "POST"
    request.META["REMOTE_ADDR"] = address
    for group, key, rate, message in _limits(session_key):
        try:
            usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
        except Exception as error:  # the cache's own errors (redis-py's, for one)
            logger.warning("the public demo cannot count questions: %r", error)
            usage = None
        if usage is None:  # uncounted: RATELIMIT_FAIL_OPEN would let it through
            raise DemoLimited(UNAVAILABLE)
        if usage["should_limit"]:
            raise DemoLimited(message)


# --- The socket -------------------------------------------------------------------------------


class PublicDemoConsumer(AsyncJsonWebsocketConsumer):
    """One visitor's demo conversation, for as long as the page is open."""

    async def connect(self):
        self.history: list[dict] = []
        self.task: asyncio.Task | None = None
        self.answers = 0
        session = self.scope.get("session")
        marked = False
        if enabled() and session is not None:
            marked = await sync_to_async(session.get)(SESSION_MARK, False)
        if not marked:
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            return
        self.session_key = session.session_key
        client = self.scope.get("client") or ("", 0)
        self.address = client[0] or ""
        await self.accept()
        await self.send_json(protocol.ready(None))

    async def disconnect(self, code):
        if self.task is not None:
            self.task.cancel()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        frame = {}
        try:
            frame = protocol.parse(raw, max_chars=settings.WEBSOCKET_MAX_FRAME_CHARS)
            if frame["type"] != protocol.SEND:
                raise protocol.UnknownType(protocol.UNKNOWN_TYPE.format(type=frame["type"]))
            await self.on_send(frame)
        except DomainError as error:
            extra = dict(error.extra)
            content = frame.get("content")
            if "text" not in extra and isinstance(content, str) and content:
                extra["text"] = content
            await self.send_json(protocol.error(error.code, error.message, **extra))

    async def on_send(self, frame: dict) -> None:
        text = protocol.text(frame, limit=settings.PUBLIC_DEMO_MAX_MESSAGE_CHARS)
        if self.task is not None and not self.task.done():
            raise Busy(BUSY, text=text)
        try:
            await sync_to_async(take_a_question, thread_sensitive=False)(
                session_key=self.session_key, address=self.address
            )
        except DemoLimited as refusal:
            await self.send_json(self._refused(refusal.code, refusal.message, text))
            return
        self.answers += 1
        self.task = asyncio.create_task(self._answer(self.answers, text))

    def _refused(self, code: str, message: str, text: str) -> dict:
        return {
            "type": protocol.REFUSED,
            "message_id": None,
            "code": code,
            "message": message,
            "text": text,
            "signup_url": reverse("signup"),
        }

    def _request(self, text: str) -> ai.Request:
        return ai.Request(
            user=None,
            feature=FEATURE,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                *self.history[-HISTORY_MESSAGES:],
                {"role": "user", "content": text},
            ],
            trace_id=f"{FEATURE}-{uuid.uuid4().hex}",
            properties={"source": SOURCE},
            privacy=True,  # nothing the visitor wrote is kept beyond their page
            max_output_tokens=settings.PUBLIC_DEMO_MAX_OUTPUT_TOKENS,
        )

    async def _answer(self, message_id: int, text: str) -> None:
        await self.send_json({"type": protocol.ANSWER_STARTED, "message_id": message_id})
        written, status, error, model = "", "complete", "", ""
        try:
            async for event in ai.stream(self._request(text)):
                if isinstance(event, ai.TextDelta):
                    await self.send_json(protocol.delta(message_id, len(written), event.text))
                    written += event.text
                elif isinstance(event, ai.Completion):
                    written, model = event.text, event.model
        except ai.Refused as refusal:  # the kill switch, say
            await self.send_json(self._refused(refusal.code, str(refusal), text))
            return
        except ai.ProviderError as failure:
            status, error = "error", str(failure)
        except asyncio.CancelledError:  # the page went away
            raise
        except Exception:
            logger.exception("a public demo answer failed")
            status, error = "error", COULD_NOT_FINISH
        if status == "complete":
            self.history += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": written},
            ]
        html = await asyncio.to_thread(render_markdown, written) if written else ""
        await self.send_json(
            {
                "type": protocol.ANSWER_FINISHED,
                "message_id": message_id,
                "message": {"status": status, "error": error, "model": model},
                "html": html,
            }
        )
