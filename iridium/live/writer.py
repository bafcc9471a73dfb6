"""Writing one AI answer into a `StreamedAnswer` while every watching page sees it stream.

Chat, support and generate say what to ask (an `ai.Request`) and what to do when the request is
refused; this writes the tokens to the run's sockets, saves progress beside the stream, reports
tool use, and saves the answer when it ends, whether complete, stopped (the task was cancelled),
failed (the provider's error is kept for a Retry) or refused.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.urls import reverse

from iridium import ai
from iridium.infra.db import on_kept_connection
from iridium.infra.heartbeat import heartbeat

from . import progress, protocol, runs, tool_notes
from .models import ANSWERS, StreamedAnswer
from .rendering import message_html, render_markdown

logger = logging.getLogger(__name__)

COULD_NOT_START = "The answer could not start. Please try again."
COULD_NOT_FINISH = "Something went wrong while answering. Please try again."

Ask = Callable[[], Awaitable[ai.Request]]
OnRefused = Callable[[ai.Refused], Awaitable[dict]]


def start(
    key: str, answer: StreamedAnswer, *, html: str | None, ask: Ask, on_refused: OnRefused
) -> runs.Run:
    """Write `answer` in a run of its own under `key`. `html` is the answer as its pages show
    it while it is written (`message_html(answer)`), rendered by the caller in the thread that
    saved it: never on the event loop, where it would hold up other answers' tokens. None when
    no page can show it yet (its object was created with it, in this request): then no
    `answer_started` frame goes out, and a page opened later gets the answer in its `ready`
    frame. `ask()`
    builds the request (in the run, so its work is off the caller's path);
    `on_refused(refusal)` cleans up after a refusal and returns what to add to the `refused`
    frame."""
    run = runs.Run(key=key, message_id=answer.pk)
    alive = (type(answer), answer.pk)

    async def produce(run):
        # Touched by this worker's heartbeat while it is written, whether or not tokens arrive:
        # no other worker takes it for interrupted meanwhile.
        heartbeat().add(ANSWERS, alive)
        try:
            try:
                request = await ask()
            except Exception:
                logger.exception("could not prepare the answer %s of %s", answer.pk, key)
                await finish(run, answer, "", answer.Status.ERROR, error=COULD_NOT_START)
                return
            await write(run, answer, html=html, request=request, on_refused=on_refused)
        finally:
            heartbeat().remove(ANSWERS, alive)

    return runs.start(run, produce)


async def write(
    run: runs.Run,
    answer: StreamedAnswer,
    *,
    html: str | None,
    request: ai.Request,
    on_refused: OnRefused,
) -> None:
    """Stream `request` into `answer` (shown as `html` until it ends), however it ends."""
    if html is not None:
        await run.send(protocol.answer_started(answer.pk, html))
    run.last_snapshot = time.monotonic()
    try:
        async with aclosing(ai.stream(request)) as events:
            async for event in events:
                if run.stop_requested:
                    # A library on the way may swallow the task's cancellation: the request to
                    # stop is honoured at the next token whatever happens to it.
                    raise asyncio.CancelledError
                await _take(run, answer, event)
    except ai.ProviderError as error:
        await finish(run, answer, run.text, answer.Status.ERROR, error=str(error))
    except ai.Refused as refusal:
        run.refusal = refusal
        answer_id = answer.pk  # before on_refused deletes the answer (and its id with it)
        extra = await on_refused(refusal)
        if isinstance(refusal, ai.LimitReached) and not isinstance(refusal, ai.TooManyInFlight):
            extra["more_url"] = reverse("plans")  # what other plans give
        await run.send(protocol.refused(answer_id, refusal.code, str(refusal), **extra))
    except asyncio.CancelledError:  # stopped: by its person, or by the worker stopping
        await finish(run, answer, run.text, answer.Status.STOPPED)
        raise
    except Exception:  # our fault, not the person's: kept as far as it got, with Retry
        logger.exception("the answer %s of %s failed", answer.pk, run.key)
        await finish(run, answer, run.text, answer.Status.ERROR, error=COULD_NOT_FINISH)


async def _take(run: runs.Run, answer: StreamedAnswer, event) -> None:
    if isinstance(event, ai.TextDelta):
        await run.delta(event.text)
        if time.monotonic() - run.last_snapshot > runs.SNAPSHOT_SECONDS:
            run.last_snapshot = time.monotonic()
            # Saved beside the stream, never in its way: tokens keep flowing meanwhile.
            progress.writer().note(answer, run.text)
            await run.snapshot()
    elif isinstance(event, ai.ToolCalled):
        # What the page shows of it (never the tool's raw result), as the tool's app says.
        tool = tool_notes.describe(event)
        answer.tool_events.append(tool)
        await run.send(protocol.tool(answer.pk, tool_notes.html(tool), **tool))
    elif isinstance(event, ai.Completion):
        await finish(run, answer, event.text, answer.Status.COMPLETE, completion=event)


async def finish(run, answer, text, status, *, completion=None, error=""):
    answer.content = text
    answer.status = status
    answer.error = error
    if completion is not None:
        answer.model = completion.model
        answer.input_tokens = completion.usage.input_tokens
        answer.output_tokens = completion.usage.output_tokens
        answer.cost_usd = completion.cost.total_usd if completion.cost else None
        answer.from_cache = completion.from_cache
    # Rendering (pygments, the template) takes milliseconds of CPU: off the event loop, so that
    # the other answers' tokens are not held up behind it, in the same hop as the save. First
    # one turn of the loop: what the answer's first output woke (the HTTP request that waits
    # for it, with a cached answer in the same turn) answers before the render's thread
    # competes with it for the interpreter.
    await asyncio.sleep(0)
    html = await sync_to_async(_render_and_save)(run, answer)
    await run.send(protocol.answer_finished(answer.pk, answer.frame(), html))


def _render_and_save(run: runs.Run, answer: StreamedAnswer) -> str:
    answer.html = render_markdown(answer.content) if answer.content else ""
    html = message_html(answer)
    try:
        # On a fresh connection if the kept one was ended meanwhile (the database restarted).
        on_kept_connection(answer.save)
    except Exception:
        # The page still gets the answer; the saved progress stays, and the answer is marked
        # interrupted (with Retry) when its page is opened again.
        logger.exception("could not save the answer %s of %s", answer.pk, run.key)
    return html
