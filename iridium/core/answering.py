"""Writing one AI answer into a `StreamedAnswer` while every watching page sees it stream.

Shared by chat and support: the app says what to ask (the iridium.ai arguments) and what to do
when the request is refused; this writes the tokens to the run's group, saves progress beside the
stream, reports tool use, and saves the answer when it ends, whether complete, stopped (the
task was cancelled), failed (the provider's error is kept for a Retry) or refused.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

from django.db import connections, models, transaction
from django.utils import timezone

from iridium import ai

from . import streams
from .db import on_kept_connection
from .loops import PerLoop
from .markdown import render
from .models import StreamedAnswer

logger = logging.getLogger(__name__)

Refusal = ai.LimitReached | ai.AIDisabled


async def write_answer(
    run: streams.Run,
    answer: StreamedAnswer,
    *,
    ask: dict,
    on_refused: Callable[[Exception], Awaitable[dict]],
) -> None:
    """Stream `ai.stream(**ask)` into `answer`. `on_refused(refusal)` cleans up after a refusal
    and returns what to add to the `refused` frame."""
    await run.send({"type": "answer_started", "message_id": answer.pk})
    run.last_snapshot = time.monotonic()
    try:
        async with aclosing(ai.stream(**ask)) as events:
            async for event in events:
                if run.stop_requested:
                    # A library on the way may swallow the task's cancellation: the request to
                    # stop is honoured at the next token whatever happens to it.
                    raise asyncio.CancelledError
                await _take(run, answer, event)
    except ai.ProviderError as error:
        await finish(run, answer, run.text, answer.Status.ERROR, error=str(error))
    except (ai.LimitReached, ai.AIDisabled) as refusal:
        extra = await on_refused(refusal)
        await run.send(
            {"type": "refused", "message_id": answer.pk, "message": str(refusal), **extra}
        )
    except BaseException:  # stopped (the task was cancelled) or failed unexpectedly
        await finish(run, answer, run.text, answer.Status.STOPPED)
        raise


async def _take(run: streams.Run, answer: StreamedAnswer, event) -> None:
    if isinstance(event, ai.TextDelta):
        await run.delta(event.text)
        if time.monotonic() - run.last_snapshot > streams.SNAPSHOT_SECONDS:
            run.last_snapshot = time.monotonic()
            # Saved beside the stream, never in its way: tokens keep flowing meanwhile.
            progress().note(answer, run.text)
            await run.snapshot()
    elif isinstance(event, ai.ToolCalled):
        tool_event = describe_tool(event)
        answer.tool_events.append(tool_event)
        await run.send({"type": "tool", "message_id": answer.pk, **tool_event})
    elif isinstance(event, ai.Completion):
        await finish(run, answer, event.text, answer.Status.COMPLETE, completion=event)


class ProgressWriter:
    """Saves the text so far of the answers being written, for all of them at once.

    Each answer notes its text every SNAPSHOT_SECONDS; whatever has been noted is written in one
    transaction, a statement per 100 answers, as soon as the previous write has finished. With
    hundreds of answers streaming that is a few writes a second instead of an UPDATE, a database
    connection and a thread hop per answer each second. The writes run in a thread of their own
    that keeps its database connection (iridium.core.db). Only answers still being written are
    updated, so a late write can never overwrite an answer that has finished meanwhile.
    """

    BATCH = 100

    def __init__(self):
        self.pending: dict[tuple[type[StreamedAnswer], int], str] = {}
        self.writing: asyncio.Task | None = None

    def note(self, answer: StreamedAnswer, text: str) -> None:
        self.pending[(type(answer), answer.pk)] = text
        if self.writing is None or self.writing.done():
            self.writing = asyncio.create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self.pending:
            noted, self.pending = self.pending, {}
            try:
                await asyncio.get_running_loop().run_in_executor(_writer_thread, self._write, noted)
            except Exception:
                logger.exception("could not save the progress of %d answers", len(noted))

    @classmethod
    def _write(cls, noted: dict) -> None:
        on_kept_connection(cls._update, noted)

    @classmethod
    def _update(cls, noted: dict) -> None:
        by_model = defaultdict(list)
        for (model, pk), text in noted.items():
            by_model[model].append((pk, text))
        now = timezone.now()
        with transaction.atomic():
            for model, texts in by_model.items():
                for start in range(0, len(texts), cls.BATCH):
                    chunk = texts[start : start + cls.BATCH]
                    content = models.Case(
                        *(models.When(pk=pk, then=models.Value(text)) for pk, text in chunk),
                        output_field=models.TextField(),
                    )
                    model.objects.filter(
                        pk__in=[pk for pk, _ in chunk], status=model.Status.STREAMING
                    ).update(content=content, updated_at=now)


_writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iridium-progress")
_writers = PerLoop(ProgressWriter)


def close_progress_connection() -> None:
    """Close the progress writer's database connection (a test database is about to go)."""
    _writer_thread.submit(connections.close_all).result()


def progress() -> ProgressWriter:
    """The progress writer of the running event loop."""
    return _writers.get()


def describe_tool(event: ai.ToolCalled) -> dict:
    """What the page shows of a tool the assistant used (never the tool's raw result)."""
    tool_event = {"name": event.name, "ok": not event.is_error}
    result = event.result if isinstance(event.result, dict) else {}
    if event.name == "create_support_ticket" and "ticket_id" in result:
        tool_event["ticket"] = {"id": result["ticket_id"], "url": result["url"]}
    if event.name == "search_knowledge_base":
        tool_event["results"] = len(result.get("results", []))
    return tool_event


async def finish(run, answer, text, status, *, completion=None, error=""):
    answer.content = text
    # Rendering (pygments) takes milliseconds of CPU: off the event loop, so that the other
    # answers' tokens are not held up behind it.
    answer.html = await asyncio.to_thread(render, text) if text else ""
    answer.status = status
    answer.error = error
    if completion is not None:
        answer.model = completion.model
        answer.input_tokens = completion.usage.input_tokens
        answer.output_tokens = completion.usage.output_tokens
        answer.cost_usd = completion.cost.total_usd if completion.cost else None
        answer.from_cache = completion.from_cache
    await answer.asave()
    await run.send({"type": "answer_finished", "message": answer.frame()})
