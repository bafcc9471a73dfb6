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

Frames are iridium.live.protocol's, made by its builders, and the socket is a
`iridium.live.consumers.FrameConsumer` (frames validated, errors mapped as on every socket): the
page sends `send {content}`, and gets `ready`, `answer_started`, `delta`, `answer_finished`,
`refused` or `error`. Messages are rendered by the one message template (live/_message.html,
through `iridium.live.rendering.PageMessage`: no table holds them): the answer in
`answer_started` and `answer_finished`, the visitor's question in the home page (an empty one,
that `static/js/public-demo.js` fills with what was typed as it is sent).
"""

import asyncio
import logging
import uuid
from typing import ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from iridium import ai
from iridium.infra.errors import Busy, DomainError
from iridium.live import protocol, writer
from iridium.live.consumers import FrameConsumer
from iridium.live.rendering import PageMessage, message_html, render_markdown

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


class DemoLimited(DomainError):
    code = "demo_limit"
    http_status = 429


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


def question() -> PageMessage:
    """A visitor's question as the page shows it, empty: the page fills in what they typed."""
    return PageMessage(pk=0, is_answer=False)


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


class PublicDemoConsumer(FrameConsumer):
    """One visitor's demo conversation, for as long as the page is open."""

    handlers: ClassVar[dict[str, str]] = {protocol.SEND: "on_send"}

    async def connect(self):
        self.history: list[dict] = []
        self.task: asyncio.Task | None = None
        self.answers = 0  # the ids of the page's answers
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

    async def on_send(self, frame: dict) -> None:
        text = protocol.text(frame, limit=settings.PUBLIC_DEMO_MAX_MESSAGE_CHARS)
        if self.task is not None and not self.task.done():
            raise Busy(BUSY, text=text)
        try:
            await sync_to_async(take_a_question, thread_sensitive=False)(
                session_key=self.session_key, address=self.address
            )
        except DemoLimited as refusal:
            await self.send_json(self._refused(None, refusal.code, refusal.message, text))
            return
        self.answers += 1
        answer = PageMessage(pk=self.answers, is_answer=True, status=PageMessage.Status.STREAMING)
        self.task = asyncio.create_task(self._answer(text, answer))

    def _refused(self, answer_id: int | None, code: str, message: str, text: str) -> dict:
        return protocol.refused(answer_id, code, message, text=text, signup_url=reverse("signup"))

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

    async def _answer(self, text: str, answer: PageMessage) -> None:
        await self.send_json(
            protocol.answer_started(answer.pk, await asyncio.to_thread(message_html, answer))
        )
        written, status, error, model = "", answer.Status.COMPLETE, "", ""
        try:
            async for event in ai.stream(self._request(text)):
                if isinstance(event, ai.TextDelta):
                    await self.send_json(protocol.delta(answer.pk, len(written), event.text))
                    written += event.text
                elif isinstance(event, ai.Completion):
                    written, model = event.text, event.model
        except ai.Refused as refusal:  # the kill switch, say
            await self.send_json(self._refused(answer.pk, refusal.code, str(refusal), text))
            return
        except ai.ProviderError as failure:
            status, error = answer.Status.ERROR, str(failure)
        except asyncio.CancelledError:  # the page went away
            raise
        except Exception:
            logger.exception("a public demo answer failed")
            status, error = answer.Status.ERROR, writer.COULD_NOT_FINISH
        if status == answer.Status.COMPLETE:
            self.history += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": written},
            ]
        answer.content, answer.status, answer.error = written, status, error
        html = await asyncio.to_thread(_render, answer)
        await self.send_json(
            protocol.answer_finished(
                answer.pk, {"status": status, "error": error, "model": model}, html
            )
        )


def _render(answer: PageMessage) -> str:
    answer.html = render_markdown(answer.content) if answer.content else ""
    return message_html(answer)
