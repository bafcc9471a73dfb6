"""Calls whose worker died mid-call (SIGKILL, a crash, a lost host) leave their row in flight.
Once it has shown no sign of life for AI_CALL_STALE_SECONDS, it is completed here: marked
interrupted, with usage estimated from what it had written (its last heartbeat) and priced, so
that budgets count it; its reservation ends and PostHog hears of it like of any other call.

Any worker may run this (each does at start and then every RECOVERY_SECONDS); a row is claimed
by one of them with a conditional update, so nothing is counted twice.
"""

import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from . import budgets, pricing
from .models import Generation
from .recorder import recorder
from .records import Caller, GenerationRecord
from .types import Usage

logger = logging.getLogger(__name__)


def recovery_seconds() -> float:
    """How often each worker looks for calls of workers that died."""
    return max(settings.AI_CALL_STALE_SECONDS / 2, 0.5)


INTERRUPTED = "The call was interrupted: its worker stopped before it ended."
BATCH = 200


async def recover_interrupted_calls() -> int:
    """Complete the calls in flight whose worker died; how many there were."""
    claimed = await sync_to_async(_claim)()
    if claimed:
        logger.warning("%d AI call(s) were interrupted by a worker that stopped", len(claimed))
        await budgets.forget_interrupted(claimed)
    return len(claimed)


def _claim() -> list[Generation]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.AI_CALL_STALE_SECONDS)
    candidates = Generation.objects.filter(in_flight=True, heartbeat_at__lt=stale).select_related(
        "user__plan", "user__organization__plan", "plan"
    )[:BATCH]
    claimed = []
    for row in candidates:
        pricing.overrides.refresh_if_stale_sync()
        # One worker wins each row.
        if not Generation.objects.filter(pk=row.pk, in_flight=True).update(in_flight=False):
            continue
        _complete(row)
        claimed.append(row)
    return claimed


def _complete(row: Generation) -> None:
    usage = Usage(input_tokens=row.estimated_input_tokens or 0, output_tokens=row.output_tokens)
    cost = pricing.price(provider=row.provider, model=row.model, usage=usage)
    row.in_flight = False
    row.total_cost_usd = cost.total_usd if cost is not None else None
    user = row.user
    plan = user.effective_plan if user is not None else row.plan
    caller = Caller(user=user, organization_id=row.organization_id, plan=plan)
    ended = row.heartbeat_at or row.created_at
    recorder.submit(
        GenerationRecord(
            created_at=row.created_at,
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
            finish_reason="interrupted",
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
        )
    )
