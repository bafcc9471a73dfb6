"""Writes generation and span rows and hands their events to PostHog, off the request path.

The service only puts records on a queue. One daemon thread per process takes them in batches,
writes the rows with its own database connection, notes models without a price, and queues the
PostHog events. Nothing here can fail a user's request; failures are logged.

A provider call's row is written twice: when the call starts (in flight, with what it holds
against budgets; written at once, without lingering) and when it ends (complete, failed or
stopped; the same row, by its span id). Meanwhile its worker's heartbeat says it is alive
(iridium.ai.recovery). PostHog hears of a call once, when it ends: a call's end whose row was
completed meanwhile by another worker, which took it for dead and reported it as interrupted,
corrects the row and sends nothing.
"""

import atexit
import logging
import queue
import threading
import time

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from iridium.infra.db import on_kept_connection

from . import posthog
from .models import Generation, Span, UnpricedModel
from .records import INTERRUPTED_FINISH, GenerationRecord, SpanRecord, TraceRecord

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
LINGER_SECONDS = 0.05
_STOP = object()

# The columns a call's second writing sets (all but its identity and start).
FINAL_FIELDS = [
    f.name
    for f in Generation._meta.concrete_fields
    if f.name not in ("id", "span_id", "created_at", "trace_id")
]


class Recorder:
    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, record: GenerationRecord | SpanRecord | TraceRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(record)
        self._ensure_thread()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; True if it was in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the thread's connection and end the thread."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _ensure_thread(self):
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="iridium-ai-recorder", daemon=True
                )
                self._thread.start()

    def _run(self):
        try:
            while True:
                batch = [self._queue.get()]
                # Linger briefly so that a busy server writes many rows per transaction; a call
                # that starts is written at once (a worker may die any moment).
                deadline = time.monotonic() + (0 if _urgent(batch[0]) else LINGER_SECONDS)
                while len(batch) < BATCH_SIZE and batch[-1] is not _STOP:
                    remaining = deadline - time.monotonic()
                    try:
                        item = (
                            self._queue.get(timeout=remaining)
                            if remaining > 0
                            else self._queue.get_nowait()
                        )
                    except queue.Empty:
                        break
                    batch.append(item)
                    if _urgent(item):
                        deadline = time.monotonic()
                stopping = batch[-1] is _STOP
                items = [item for item in batch if item is not _STOP]
                try:
                    self._write(items)
                except Exception as error:  # the thread must outlive any one bad batch
                    logger.error(
                        "could not record %d AI call(s): %s", len(items), type(error).__name__
                    )
                finally:
                    with self._idle:
                        self._pending -= len(items)
                        self._idle.notify_all()
                if stopping:
                    return
        finally:
            connection.close()

    def _write(self, records):
        if not records:
            return
        # A turn's trace is sent only: its figures are its generations' rows.
        rows = [
            record
            for record in records
            if not isinstance(record, TraceRecord) and not getattr(record, "row_written", False)
        ]
        reported = self._write_all(rows) if rows else set()
        for record in records:
            if getattr(record, "in_flight", False):
                continue  # PostHog hears of a call when it ends
            if getattr(record, "span_id", None) in reported:
                continue  # and once: as interrupted, by the worker that took it for dead
            try:
                posthog.capture(record.to_event())
                failure = getattr(record, "to_exception", lambda: None)()
                if failure is not None:
                    posthog.capture_exception(failure)
            except Exception as error:
                logger.error("could not queue a PostHog event: %s", type(error).__name__)

    def _write_all(self, records) -> set[str]:
        """Write the rows; the span ids of calls already reported (see `_write_rows`)."""
        try:
            return on_kept_connection(self._write_rows, records)
        except Exception as error:
            # One bad row must not cost the others theirs: the batch is written again row by
            # row. Logs name the rows, never their content (prompts, answers, arguments).
            logger.warning(
                "could not record %d AI call(s) at once (%s); recording them one by one",
                len(records),
                type(error).__name__,
            )
        reported = set()
        for record in records:
            try:
                reported |= on_kept_connection(self._write_rows, [record])
            except Exception as error:
                logger.error(
                    "could not record AI call %s of trace %s: %s",
                    record.span_id,
                    record.trace_id,
                    type(error).__name__,
                )
        return reported

    @staticmethod
    def _write_rows(records):
        # A call written twice in one batch (it started and ended within it): its last state.
        generations = list(
            {r.span_id: r for r in records if isinstance(r, GenerationRecord)}.values()
        )
        spans = [r for r in records if isinstance(r, SpanRecord)]
        unpriced: dict[tuple[str, str], int] = {}
        for record in generations:
            if record.cost is None and not record.is_error and not record.in_flight:
                key = (record.model, record.provider)
                unpriced[key] = unpriced.get(key, 0) + 1
        with transaction.atomic():
            reported = _reported_as_interrupted(generations)
            rows = [r.to_row() for r in generations]
            now = timezone.now()
            for row in rows:
                if row.in_flight:
                    # Alive as it is written (perhaps a while after it started, if this thread
                    # is behind): from now on its worker's heartbeat says so.
                    row.heartbeat_at = now
                if row.span_id in reported:
                    row.properties = {**row.properties, "reportedInterrupted": True}
            if generations:
                Generation.objects.bulk_create(
                    rows,
                    update_conflicts=True,
                    unique_fields=["span_id"],
                    update_fields=FINAL_FIELDS,
                )
            if spans:
                Span.objects.bulk_create([r.to_row() for r in spans])
            for (model, provider), calls in unpriced.items():
                updated = UnpricedModel.objects.filter(model=model).update(
                    calls=F("calls") + calls, last_seen=timezone.now()
                )
                if not updated:
                    UnpricedModel.objects.get_or_create(
                        model=model, defaults={"provider": provider, "calls": calls}
                    )
        return reported


def _reported_as_interrupted(generations: list[GenerationRecord]) -> set[str]:
    """The calls among these ends whose rows another worker completed as interrupted (it took
    them for dead, iridium.ai.recovery) and reported to PostHog. Their rows are locked until the
    batch is written: a worker about to take one for dead finds it complete."""
    ended = [record.span_id for record in generations if not record.in_flight]
    if not ended:
        return set()
    found = Generation.objects.select_for_update().filter(
        span_id__in=ended, in_flight=False, finish_reason=INTERRUPTED_FINISH
    )
    return set(found.values_list("span_id", flat=True))


def _urgent(item) -> bool:
    return getattr(item, "in_flight", False)


recorder = Recorder()
# At exit the queue is written before PostHog's last flush; without PostHog, on its own.
posthog.run_before_exit(recorder.stop)
atexit.register(recorder.stop)
