"""Calls in flight: their signs of life, and their completion when their worker died.

Every call in flight on this worker is beaten by the worker's heartbeat (iridium.infra.heartbeat)
every `heartbeat_seconds()`, whether or not tokens arrive (a model thinking before its first
token, tool-call arguments streaming, a call that is not streamed): its row's `heartbeat_at`,
and the tokens written so far, in one UPDATE for all of them.

Calls whose worker died mid-call (SIGKILL, a crash, a lost host) leave their row in flight.
Once it has shown no sign of life for AI_CALL_STALE_SECONDS, it is completed here: marked
interrupted, with usage estimated from what it had written (its last heartbeat) and priced, so
that budgets count it; its reservation ends and PostHog hears of it like of any other call.
Any worker may run this (each does at start and then every `recovery_seconds()`); a row is
claimed, and its interrupted figures written, by one of them with one conditional update, so
nothing is counted twice.

A call taken for dead that was alive after all (its worker's heartbeat held up for longer than
AI_CALL_STALE_SECONDS: the database unreachable, the event loop blocked) still ends as calls do,
and its end wins the row: the row says what really happened (its usage, cost and finish), the
budgets are charged the difference between its cost and the estimate recovery charged, and
PostHog, which heard of the call once already (as interrupted, with the estimate), does not hear
of it again (iridium.ai.recorder). Its row's properties say `reportedInterrupted`.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from iridium.infra.db import on_kept_connection_async
from iridium.infra.heartbeat import Kind, heartbeat

from . import budgets, pricing
from .models import Generation
from .recorder import FINAL_FIELDS, recorder
from .records import INTERRUPTED_FINISH, Caller, GenerationRecord
from .types import Usage

logger = logging.getLogger(__name__)


def recovery_seconds() -> float:
    """How often each worker looks for calls of workers that died."""
    return max(settings.AI_CALL_STALE_SECONDS / 2, 0.5)


INTERRUPTED = "The call was interrupted: its worker stopped before it ended."
BATCH = 200


# --- Signs of life ---------------------------------------------------------------------------


def heartbeat_seconds() -> float:
    """How often a call in flight says it is alive: well within the time after which it would be
    taken for dead."""
    return min(5.0, settings.AI_CALL_STALE_SECONDS / 3)


def _beat(calls: dict[str, int]) -> None:
    tokens = models.Case(
        *(models.When(span_id=span, then=models.Value(n)) for span, n in calls.items()),
        output_field=models.PositiveIntegerField(),
    )
    Generation.objects.filter(span_id__in=list(calls), in_flight=True).update(
        output_tokens=tokens, heartbeat_at=timezone.now()
    )


CALLS = Kind("AI call(s) in flight", _beat, heartbeat_seconds)


def alive(span_id: str, output_tokens: Callable[[], int]) -> None:
    """The call `span_id` is in flight on this worker until `ended`; `output_tokens()` is about
    how many tokens it has written so far."""
    heartbeat().add(CALLS, span_id, output_tokens)


def forget(span_id: str) -> None:
    """The call `span_id` is no longer beaten (it ended, or was refused before it began)."""
    heartbeat().remove(CALLS, span_id)


async def ended(span_id: str, *, seconds: float, cost: Decimal | None) -> Decimal | None:
    """The call `span_id` ended after `seconds`, costing `cost`: it is no longer beaten, and no
    worker can take it for dead any more. None if it was still in flight; if another worker had
    already completed it as interrupted (it took it for dead), what that worker charged budgets.

    A call shorter than half of AI_CALL_STALE_SECONDS cannot have been taken for dead (its row
    was at most that old, with clocks in step to within that margin): its end costs nothing
    more. A longer one ends its row here, in one conditional update, before its final record
    (which the recorder writes in a moment) completes it."""
    try:
        if seconds < settings.AI_CALL_STALE_SECONDS / 2:
            return None
        return await on_kept_connection_async(_end, span_id, cost)
    except Exception as error:  # the database away: the call's end is recorded all the same
        logger.warning("could not end AI call %s in its row: %r", span_id, error)
        return None
    finally:
        forget(span_id)


def _end(span_id: str, cost: Decimal | None) -> Decimal | None:
    with transaction.atomic():
        mine = Generation.objects.filter(span_id=span_id, in_flight=True)
        if mine.update(in_flight=False, total_cost_usd=cost):
            return None
        row = (
            Generation.objects.filter(span_id=span_id, finish_reason=INTERRUPTED_FINISH)
            .values("total_cost_usd")
            .first()
        )
    # No row: not written yet (the recorder has it), so never taken for dead.
    return None if row is None else (row["total_cost_usd"] or Decimal(0))


# --- Completing calls whose worker died ------------------------------------------------------


async def recover_interrupted_calls() -> int:
    """Complete the calls in flight whose worker died; how many there were."""
    claimed = await sync_to_async(_claim)()
    if claimed:
        logger.warning("%d AI call(s) were interrupted by a worker that stopped", len(claimed))
        for _, record in claimed:
            recorder.submit(record)  # its row is written: PostHog hears of it
        await budgets.forget_interrupted([row for row, _ in claimed])
    return len(claimed)


def _claim() -> list[tuple[Generation, GenerationRecord]]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.AI_CALL_STALE_SECONDS)
    # The candidates are read from their one table, and their people and plans by one query
    # each after: a read that joins tables takes their locks one by one, which can deadlock with
    # a statement that locks several tables in turn (the test suite's flush TRUNCATEs them all),
    # and this read runs every few seconds on every worker.
    candidates = Generation.objects.filter(in_flight=True, heartbeat_at__lt=stale).prefetch_related(
        "user__plan", "user__organization__plan", "plan"
    )[:BATCH]
    claimed = []
    for row in candidates:
        pricing.overrides.refresh_if_stale_sync()
        record = _interrupted(row)
        completed = record.to_row()
        # One worker wins each row, and writes it complete in the same step: a call's own end
        # (which may yet come, if its worker was alive after all) finds it so.
        if not Generation.objects.filter(pk=row.pk, in_flight=True).update(
            **{name: getattr(completed, name) for name in FINAL_FIELDS}
        ):
            continue
        row.in_flight = False
        row.total_cost_usd = completed.total_cost_usd
        claimed.append((row, record))
    return claimed


def _interrupted(row: Generation) -> GenerationRecord:
    usage = Usage(input_tokens=row.estimated_input_tokens or 0, output_tokens=row.output_tokens)
    cost = pricing.price(provider=row.provider, model=row.model, usage=usage)
    user = row.user
    plan = user.effective_plan if user is not None else row.plan
    caller = Caller(user=user, organization_id=row.organization_id, plan=plan)
    ended = row.heartbeat_at or row.created_at
    return GenerationRecord(
        created_at=row.created_at,
        session_id=row.session_id,
        caller=caller,
        trace_id=row.trace_id,
        span_id=row.span_id,
        parent_id=row.parent_id,
        feature=row.feature,
        provider=row.provider,
        model=row.model,
        base_url=row.base_url,
        stream=row.stream,
        step=row.step,
        usage=usage,
        cost=cost,
        latency_ms=(ended - row.created_at).total_seconds() * 1000,
        time_to_first_token_ms=None,
        http_status=None,
        attempts=1,
        is_error=True,
        error=INTERRUPTED,
        finish_reason=INTERRUPTED_FINISH,
        privacy_mode=row.privacy_mode,
        tool_schemas=[{"type": "function", "function": {"name": n}} for n in row.tools],
        properties={**row.properties, "usageEstimated": True},
        input=row.input,
        output=None,
        estimated_input_tokens=row.estimated_input_tokens,
        routing_reason=row.routing_reason,
        flags=row.flags,
        variant=row.variant,
        reserved_cost=row.reserved_cost_usd,
        row_written=True,
    )
