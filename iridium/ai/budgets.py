"""Budgets and limits, held before every provider call and settled when it ends.

What is checked, for a signed-in caller (anonymous calls have no budget):
- the plan's daily request limit (UTC day; one answer is one request, however many calls its
  tool loop makes; a request refused, or whose provider failed before answering, does not count);
- how many answers the user has in flight (the plan's `max_answers_in_flight`);
- the plan's monthly budget per user, and the organization's monthly budget when it has one.

Every provider call *reserves* the most it can cost before it starts (its input estimate and the
plan's output-token cap at the model's price), in one atomic step with the checks, and *settles*
to what it cost when it ends (or releases the reservation when the provider failed before
answering). A call is admitted while spent + reserved is below the budget, so however many calls
run at once, on however many workers, the month's spend exceeds a budget by at most one call's
reservation.

Where the counters live:
- Redis (`REDIS_URL`), shared by every worker: per budget a spend counter (billionths of a
  dollar) and a hash of the reservations in flight (each with an expiry, so that a worker's
  death cannot hold them for ever); per user and day a request counter. A Lua script checks and
  reserves atomically. Counters Redis does not have (new period, expired, Redis restarted, or
  cleared after Redis was unreachable) start again from the generation table, a spend counter
  together with the reservations of the calls in flight there. A call's end goes to Redis
  whenever it answers, whichever store admitted the call.
- While Redis is configured but unreachable: the generation table itself, under a row lock on
  the user (and organization). Every call's row is written when it starts (`in_flight`, with its
  reservation), so calls in flight on every worker count. Slower, and logged once a minute.
- On the embedded default (no REDIS_URL, one process): the same counters in this process.

Reaching 80% and 100% of a budget is recorded once per budget and month (`BudgetWarning`).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Sum
from django.dispatch import receiver

from iridium.infra.breaker import Breaker
from iridium.infra.db import on_kept_connection_async
from iridium.infra.redis import async_client, run_script

from . import errors
from .models import BudgetWarning, Generation
from .records import Caller

logger = logging.getLogger(__name__)

NANOS = Decimal(1_000_000_000)  # counters hold billionths of a dollar: integers for INCRBY
RECONCILE_SECONDS = 3600
DAY_TTL_SECONDS = 2 * 86400
HOLD_TTL_SECONDS = 40 * 86400
# A reservation counts for this long at most: longer than any call, shorter than for ever (the
# worker holding it may die; iridium.ai.recovery settles its call sooner).
HOLD_SECONDS = 900
WARNING_LEVELS = (80, 100)
KEY_PREFIX = "iridium:budget:"
REDIS_ERRORS = (redis.RedisError, OSError, TimeoutError)

breaker = Breaker("Redis (budget counters)")


class CountersUnsettled(Exception):
    """Redis's counters kept vanishing while a call was being admitted (Redis restarting, a
    reconciliation running meanwhile): that call is admitted by the tables instead."""


@dataclass(frozen=True)
class Subject:
    """A budget: a user's (their plan's) or an organization's."""

    name: str  # "user:12", "org:3"
    budget: Decimal
    filters: dict  # of the generation table: {"user_id": 12}

    @property
    def budget_nanos(self) -> int:
        return int(self.budget * NANOS)


@dataclass
class Reservation:
    """A call admitted against its caller's limits and budgets, holding `amount` nanos."""

    caller: Caller
    span_id: str
    amount: int
    first: bool  # the answer's first call: it counts as a request
    subjects: list[Subject]
    month: str
    day: str
    store: object  # which admitted it (settle and release go to the counters of now)
    # The database store wrote the call's row, in flight, as part of the reservation.
    row_written: bool = False
    ended: bool = field(default=False)
    holds: bool = True  # False: admitted and counted, nothing held (`admit_free`)


def _periods(now: datetime) -> tuple[str, str]:
    return now.strftime("%Y-%m"), now.strftime("%Y-%m-%d")


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def subjects_of(caller: Caller) -> list[Subject]:
    user_id = caller.user_id
    found = [Subject(f"user:{user_id}", caller.plan.monthly_budget_usd, {"user_id": user_id})]
    organization = caller.user.organization if caller.organization_id else None
    if organization is not None and organization.monthly_budget_usd is not None:
        found.append(
            Subject(
                f"org:{organization.pk}",
                organization.monthly_budget_usd,
                {"organization_id": organization.pk},
            )
        )
    return found


async def reserve(
    caller: Caller,
    *,
    span_id: str,
    first: bool,
    amount: Decimal | None,
    start_row=None,
    holds: bool = True,
) -> Reservation | None:
    """Admit a provider call holding `amount` (its most cost; None when the model has no price:
    nothing can be held), or raise `errors.LimitReached`. None for anonymous callers.
    `start_row()` makes the call's generation row in flight, which the database store writes.
    Without `holds`, the call is admitted and counted but holds nothing (`admit_free`)."""
    if caller.user is None:
        return None
    now = datetime.now(UTC)
    month, day = _periods(now)
    reservation = Reservation(
        caller=caller,
        span_id=span_id,
        amount=int((amount or 0) * NANOS),
        first=first,
        subjects=subjects_of(caller),
        month=month,
        day=day,
        store=None,
        holds=holds,
    )
    store = _store()
    if store is not None:
        try:
            async with asyncio.timeout(settings.REDIS_TIMEOUT * 3):
                await store.reserve(reservation)
            reservation.store = store
            return reservation
        except CountersUnsettled as error:
            logger.warning("admitted by the tables: %s", error)
        except REDIS_ERRORS as error:
            _redis_failed(error)
    await _DatabaseStore().reserve(reservation, start_row)
    reservation.store = _DatabaseStore()
    return reservation


async def admit_free(caller: Caller, *, span_id: str) -> None:
    """Admit a request that costs nothing and ends at once (an answer from the cache), or raise
    `errors.LimitReached`: checked as any answer's first call (the daily limit, answers in
    flight, the budgets) and counted as a request, in one step; nothing is held, so there is
    nothing to settle."""
    reservation = await reserve(caller, span_id=span_id, first=True, amount=None, holds=False)
    if reservation is not None:
        reservation.ended = True


async def settle(reservation: Reservation | None, cost: Decimal | None) -> None:
    """The call ended: replace its reservation by what it cost (None: price unknown, 0).

    This goes to the counters of now, whichever store admitted the call: a call the tables
    admitted while Redis was away may end once Redis is back, where its reservation was put
    when the counters were rebuilt (`_counters_from_table`)."""
    if reservation is None or reservation.ended:
        return
    reservation.ended = True
    nanos = int((cost or 0) * NANOS)
    store = _store()
    if store is None:
        return  # Redis is away: the call's row is the record, which the counters start from
    try:
        totals = await store.settle(reservation, nanos)
    except REDIS_ERRORS as error:
        _redis_failed(error)  # the counters start again from the table once Redis answers
        return
    for subject, total in zip(reservation.subjects, totals, strict=True):
        if total is not None:
            await _note_crossings(subject, before=total - nanos, after=total)


async def release(reservation: Reservation | None) -> None:
    """The provider failed before answering: nothing was spent, and it is not a request."""
    if reservation is None or reservation.ended:
        return
    reservation.ended = True
    store = _store()
    if store is None:
        return
    try:
        await store.release(reservation)
    except REDIS_ERRORS as error:
        _redis_failed(error)


# --- Figures from the generation table ------------------------------------------------------


def _requests_today(user_id: int, now: datetime) -> int:
    # One answer is one request: its first provider call (step 1) or its cache hit, in flight
    # or done, unless its provider failed.
    return (
        Generation.objects.filter(user_id=user_id, created_at__gte=day_start(now), step=1)
        .exclude(is_error=True, finish_reason="")
        .count()
    )


def _spent_this_month(subject: Subject, now: datetime) -> int:
    """What the subject's finished calls cost this month (calls in flight are reserved)."""
    total = Generation.objects.filter(
        created_at__gte=month_start(now), in_flight=False, **subject.filters
    ).aggregate(total=Sum("total_cost_usd"))["total"]
    return int((total or Decimal(0)) * NANOS)


def _in_flight(subject: Subject, now: datetime):
    """The subject's calls in flight that hold a reservation: those with a recent sign of
    life (the others are calls whose worker died, which iridium.ai.recovery completes)."""
    fresh = now - timedelta(seconds=settings.AI_CALL_STALE_SECONDS)
    return Generation.objects.filter(
        created_at__gte=month_start(now) - timedelta(seconds=HOLD_SECONDS),
        in_flight=True,
        heartbeat_at__gte=fresh,
        **subject.filters,
    )


def _held_in_table(subject: Subject, now: datetime) -> tuple[int, int]:
    """What calls in flight hold, and how many answers they are."""
    in_flight = _in_flight(subject, now)
    figures = in_flight.aggregate(held=Sum("reserved_cost_usd"))
    answers = in_flight.filter(step=1).count()
    return int((figures["held"] or Decimal(0)) * NANOS), answers


def _counters_from_table(
    subject: Subject, now: datetime, holds: list[str]
) -> tuple[int, list[str], list[str]]:
    """What Redis's counters of a budget start from: what its finished calls cost; the
    reservations of its calls in flight (span id, then "amount:expiry:counts" as the
    reservation script writes them); and which of `holds` (the reservations Redis has) belong
    to calls that have ended, whose cost is in what was spent."""
    spent = _spent_this_month(subject, now)
    in_flight = []
    rows = _in_flight(subject, now).values_list(
        "span_id", "reserved_cost_usd", "created_at", "step"
    )
    for span_id, reserved, created_at, step in rows:
        amount = int((reserved or Decimal(0)) * NANOS)
        expiry = created_at.timestamp() + HOLD_SECONDS
        in_flight += [span_id, f"{amount}:{expiry!r}:{1 if step == 1 else 0}"]
    ended = Generation.objects.filter(span_id__in=holds, in_flight=False)
    return spent, in_flight, list(ended.values_list("span_id", flat=True)) if holds else []


def _refusal(reservation: Reservation, kind: str, index: int = 0) -> errors.LimitReached:
    plan = reservation.caller.plan
    if kind == "daily":
        limit = plan.daily_request_limit
        return errors.LimitReached(errors.DAILY_LIMIT_REACHED.format(limit=limit))
    if kind == "in_flight":
        return errors.TooManyInFlight(
            errors.TOO_MANY_IN_FLIGHT.format(limit=plan.max_answers_in_flight)
        )
    subject = reservation.subjects[index]
    message = errors.USER_BUDGET_REACHED if index == 0 else errors.ORGANIZATION_BUDGET_REACHED
    return errors.LimitReached(message.format(budget=subject.budget))


async def _note_crossings(subject: Subject, *, before: int, after: int) -> None:
    """Note the warning levels the subject's spend has just crossed (80%, 100%), once each a
    month. A note is not worth an answer: if it cannot be written, it is logged and skipped."""
    if subject.budget <= 0:
        return
    crossed = [
        percent
        for percent in WARNING_LEVELS
        if before < subject.budget_nanos * percent / 100 <= after
        or (before == 0 and after >= subject.budget_nanos * percent / 100)
    ]
    if not crossed:
        return
    try:
        await on_kept_connection_async(_write_warnings, subject, crossed, after)
    except Exception as error:
        logger.warning("could not note a budget warning of %s: %r", subject.name, error)


def _write_warnings(subject: Subject, crossed: list[int], after: int) -> None:
    period = datetime.now(UTC).strftime("%Y-%m")
    for percent in crossed:
        BudgetWarning.objects.get_or_create(
            period=period,
            percent=percent,
            **subject.filters,
            defaults={"budget_usd": subject.budget, "spent_usd": Decimal(after) / NANOS},
        )


# --- Redis ----------------------------------------------------------------------------------

_RESERVE = """
-- KEYS[1]: the user's requests today; then per budget: its spend, its reservations.
-- ARGV: now, span id, amount, expiry, first (1/0), daily limit, answers in flight (0: any),
--       day ttl, hold ttl, holds (1/0: admitted and counted only), then each budget.
local now = tonumber(ARGV[1])
local budgets = (#KEYS - 1) / 2
for i = 1, budgets do
    if redis.call('EXISTS', KEYS[2 * i]) == 0 then return {'init', i} end
end
local requests = redis.call('GET', KEYS[1])
if not requests then return {'init', 0} end
local first = ARGV[5] == '1'
if first and tonumber(requests) + 1 > tonumber(ARGV[6]) then return {'daily', 0} end
for i = 1, budgets do
    local holds = KEYS[2 * i + 1]
    local entries = redis.call('HGETALL', holds)
    local held, live = 0, 0
    for j = 1, #entries, 2 do
        local amount, expiry, counts = string.match(entries[j + 1], '^(%d+):([%d.]+):(%d)$')
        if tonumber(expiry) < now then
            redis.call('HDEL', holds, entries[j])
        else
            held = held + tonumber(amount)
            live = live + tonumber(counts)
        end
    end
    if i == 1 and first and tonumber(ARGV[7]) > 0 and live >= tonumber(ARGV[7]) then
        return {'in_flight', i}
    end
    if tonumber(redis.call('GET', KEYS[2 * i])) + held >= tonumber(ARGV[10 + i]) then
        return {'budget', i}
    end
end
if first then
    redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ARGV[8])
end
if ARGV[10] == '0' then return {'ok', 0} end
for i = 1, budgets do
    redis.call('HSET', KEYS[2 * i + 1], ARGV[2], ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[5])
    redis.call('EXPIRE', KEYS[2 * i + 1], ARGV[9])
end
return {'ok', 0}
"""

_SETTLE = """
-- KEYS: per budget, its spend, its reservations and its calls ended lately.
-- ARGV: span id, cost, now, how long an ended call is remembered.
local totals = {}
for i = 1, #KEYS / 3 do
    redis.call('HDEL', KEYS[3 * i - 1], ARGV[1])
    redis.call('ZADD', KEYS[3 * i], ARGV[3], ARGV[1] .. ':' .. ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[3 * i], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
    redis.call('EXPIRE', KEYS[3 * i], ARGV[4])
    if redis.call('EXISTS', KEYS[3 * i - 2]) == 1 then
        totals[i] = redis.call('INCRBY', KEYS[3 * i - 2], ARGV[2])
    else
        totals[i] = false
    end
end
return totals
"""

_RELEASE = """
-- KEYS[1]: the user's requests today, then per budget its reservations and its calls ended
-- lately. ARGV: span id, first, now, how long an ended call is remembered.
-- The request is taken back only if these counters hold it (the user's reservation is there):
-- not if the counters were started again from the table meanwhile without it.
local held = 0
for i = 2, #KEYS, 2 do
    held = held + redis.call('HDEL', KEYS[i], ARGV[1])
    redis.call('ZADD', KEYS[i + 1], ARGV[3], ARGV[1] .. ':0')
    redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
    redis.call('EXPIRE', KEYS[i + 1], ARGV[4])
end
if ARGV[2] == '1' and held > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('DECR', KEYS[1])
end
return 1
"""

_START = """
-- A budget's counters start from the table, unless another worker started them first.
-- KEYS: its spend, its reservations, its calls ended lately. ARGV: spend, spend ttl,
-- reservations ttl, until when an ended call's cost is held, how many reservations belong to
-- calls the table has ended, their span ids, then span id and reservation of each call in
-- flight in the table (kept if Redis already has it). A call in flight in the table that Redis
-- saw end (its row not written yet) holds what it cost instead, until the counter starts again.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local costs = {}
for _, entry in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local span, cost = string.match(entry, '^(.*):(%d+)$')
    if span then costs[span] = cost end
end
local ended = tonumber(ARGV[5])
for i = 6, 5 + ended do redis.call('HDEL', KEYS[2], ARGV[i]) end
for i = 6 + ended, #ARGV - 1, 2 do
    local cost = costs[ARGV[i]]
    if cost then
        redis.call('HSET', KEYS[2], ARGV[i], cost .. ':' .. ARGV[4] .. ':0')
    else
        redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
    end
end
if #ARGV > 5 + ended then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _day_key(reservation: Reservation) -> str:
    return f"{KEY_PREFIX}requests:user:{reservation.caller.user_id}:{reservation.day}"


def _spent_key(subject: Subject, month: str) -> str:
    return f"{KEY_PREFIX}spent:{subject.name}:{month}"


def _held_key(subject: Subject, month: str) -> str:
    return f"{KEY_PREFIX}held:{subject.name}:{month}"


def _ended_key(subject: Subject, month: str) -> str:
    # Not cleared with the counters (`_Reconcile`): what the counters start from again.
    return f"{KEY_PREFIX}ended:{subject.name}:{month}"


class _RedisStore:
    def __init__(self, client: redis.asyncio.Redis):
        self.client = client

    async def _reconciled(self) -> None:
        if _reconcile.needed:
            await _reconcile.run(self.client)

    async def reserve(self, reservation: Reservation) -> None:
        await self._reconciled()
        plan = reservation.caller.plan
        keys = [_day_key(reservation)]
        for subject in reservation.subjects:
            keys += [_spent_key(subject, reservation.month), _held_key(subject, reservation.month)]
        arguments = [
            repr(time.time()),
            reservation.span_id,
            reservation.amount,
            repr(time.time() + HOLD_SECONDS),
            1 if reservation.first else 0,
            plan.daily_request_limit,
            plan.max_answers_in_flight,
            DAY_TTL_SECONDS,
            HOLD_TTL_SECONDS,
            1 if reservation.holds else 0,
            *(subject.budget_nanos for subject in reservation.subjects),
        ]
        for _ in range(1 + len(reservation.subjects) + 1):
            outcome, index = await run_script(self.client, _RESERVE, keys, arguments)
            outcome = _text(outcome)
            if outcome == "ok":
                return
            if outcome != "init":
                index = max(int(index) - 1, 0)
                if outcome == "budget":
                    subject = reservation.subjects[index]
                    spent = await self.client.get(_spent_key(subject, reservation.month))
                    await _note_crossings(subject, before=0, after=int(spent or 0))
                raise _refusal(reservation, outcome, index)
            await self._initialise(reservation, int(index))
        raise CountersUnsettled("the budget counters could not be initialised")

    async def _initialise(self, reservation: Reservation, index: int) -> None:
        # A counter Redis does not have starts from the table; whichever worker sets it first
        # stands. A spend counter starts together with the reservations of the calls in flight
        # (the tables may have admitted some while Redis was away, or Redis may have lost
        # them restarting), and without those of calls that have ended (their cost is in it).
        now = datetime.now(UTC)
        if index == 0:
            count = await on_kept_connection_async(_requests_today, reservation.caller.user_id, now)
            await self.client.set(_day_key(reservation), count, nx=True, ex=DAY_TTL_SECONDS)
        else:
            subject = reservation.subjects[index - 1]
            keys = [
                _spent_key(subject, reservation.month),
                _held_key(subject, reservation.month),
                _ended_key(subject, reservation.month),
            ]
            holds = [_text(span_id) for span_id in await self.client.hkeys(keys[1])]
            spent, in_flight, ended = await on_kept_connection_async(
                _counters_from_table, subject, now, holds
            )
            # An ended call's cost is held longer than the counter lives: the counter starts
            # again from the table by then, which has the call's row written.
            until = repr(time.time() + RECONCILE_SECONDS + HOLD_SECONDS)
            arguments = [spent, RECONCILE_SECONDS, HOLD_TTL_SECONDS, until, len(ended), *ended]
            await run_script(self.client, _START, keys, [*arguments, *in_flight])

    async def settle(self, reservation: Reservation, nanos: int) -> list[int | None]:
        await self._reconciled()
        keys = []
        for subject in reservation.subjects:
            keys += [
                _spent_key(subject, reservation.month),
                _held_key(subject, reservation.month),
                _ended_key(subject, reservation.month),
            ]
        arguments = [reservation.span_id, nanos, repr(time.time()), HOLD_SECONDS]
        totals = await run_script(self.client, _SETTLE, keys, arguments)
        return [int(total) if total is not None else None for total in totals]

    async def release(self, reservation: Reservation) -> None:
        await self._reconciled()
        keys = [_day_key(reservation)]
        for subject in reservation.subjects:
            keys += [_held_key(subject, reservation.month), _ended_key(subject, reservation.month)]
        arguments = [reservation.span_id, 1 if reservation.first else 0, repr(time.time())]
        await run_script(self.client, _RELEASE, keys, [*arguments, HOLD_SECONDS])


class _Reconcile:
    """After Redis was unreachable, its counters missed what was spent meanwhile (counted in
    the table): they are cleared, to start again from the table, before Redis is used again."""

    needed = False

    async def run(self, client: redis.asyncio.Redis) -> None:
        pattern = f"{KEY_PREFIX}[rs][ep]*"  # requests:* and spent:*, not the reservations
        async for key in client.scan_iter(match=pattern, count=1000):
            await client.delete(key)
        self.needed = False


_reconcile = _Reconcile()


def _redis_failed(error: BaseException) -> None:
    breaker.trip(error, "budgets are checked against the database")
    _reconcile.needed = True


# --- Without Redis: the table, or this process's memory --------------------------------------


class _DatabaseStore:
    """Redis is unreachable: limits and budgets are read from the generation table, under a row
    lock on the caller (and their organization), and the call's row is written in flight as part
    of the reservation, so that calls admitted on every worker count."""

    async def reserve(self, reservation: Reservation, start_row) -> None:
        await on_kept_connection_async(self._reserve, reservation, start_row)

    @staticmethod
    def _reserve(reservation: Reservation, start_row) -> None:
        from iridium.accounts.models import Organization, User

        now = datetime.now(UTC)
        plan = reservation.caller.plan
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=reservation.caller.user_id).first()
            if reservation.caller.organization_id:
                Organization.objects.select_for_update().filter(
                    pk=reservation.caller.organization_id
                ).first()
            requests = _requests_today(reservation.caller.user_id, now)
            if reservation.first and requests + 1 > plan.daily_request_limit:
                raise _refusal(reservation, "daily")
            for index, subject in enumerate(reservation.subjects):
                held, answers = _held_in_table(subject, now)
                if index == 0 and reservation.first and answers >= plan.max_answers_in_flight:
                    raise _refusal(reservation, "in_flight")
                spent = _spent_this_month(subject, now)
                if spent + held >= subject.budget_nanos:
                    raise _refusal(reservation, "budget", index)
            if start_row is not None:
                row = start_row()
                row.heartbeat_at = now
                Generation.objects.bulk_create(
                    [row], update_conflicts=True, unique_fields=["span_id"],
                    update_fields=["in_flight", "reserved_cost_usd", "heartbeat_at"],
                )  # fmt: skip
                reservation.row_written = True


class _LocalStore:
    """The same counters in this process's memory, for the embedded default (one process)."""

    def __init__(self):
        self.counters: dict[str, tuple[int, float]] = {}  # key -> (value, expires)
        self.holds: dict[str, dict[str, tuple[int, float, bool]]] = {}

    def _get(self, key):
        value = self.counters.get(key)
        if value is None or value[1] < time.monotonic():
            self.counters.pop(key, None)
            return None
        return value[0]

    def _set(self, key, value, ttl):
        self.counters[key] = (value, time.monotonic() + ttl)

    async def reserve(self, reservation: Reservation) -> None:
        now = datetime.now(UTC)
        plan = reservation.caller.plan
        day_key = _day_key(reservation)
        if self._get(day_key) is None:
            count = await on_kept_connection_async(_requests_today, reservation.caller.user_id, now)
            self._set(day_key, count, DAY_TTL_SECONDS)
        for subject in reservation.subjects:
            key = _spent_key(subject, reservation.month)
            if self._get(key) is None:
                spent = await on_kept_connection_async(_spent_this_month, subject, now)
                self._set(key, spent, 3600)
        # From here to the end nothing awaits: the check and the reservation are one step.
        if reservation.first and self._get(day_key) + 1 > plan.daily_request_limit:
            raise _refusal(reservation, "daily")
        for index, subject in enumerate(reservation.subjects):
            holds = self._live_holds(subject, reservation.month)
            answers = sum(counts for _, _, counts in holds.values())
            if index == 0 and reservation.first and answers >= plan.max_answers_in_flight:
                raise _refusal(reservation, "in_flight")
            held = sum(amount for amount, _, _ in holds.values())
            spent = self._get(_spent_key(subject, reservation.month))
            if spent + held >= subject.budget_nanos:
                await _note_crossings(subject, before=0, after=spent)
                raise _refusal(reservation, "budget", index)
        if reservation.first:
            self.counters[day_key] = (self._get(day_key) + 1, self.counters[day_key][1])
        for subject in reservation.subjects if reservation.holds else ():
            self._live_holds(subject, reservation.month)[reservation.span_id] = (
                reservation.amount,
                time.monotonic() + HOLD_SECONDS,
                reservation.first,
            )

    def _live_holds(self, subject: Subject, month: str) -> dict:
        holds = self.holds.setdefault(_held_key(subject, month), {})
        now = time.monotonic()
        for span_id in [s for s, (_, expiry, _) in holds.items() if expiry < now]:
            del holds[span_id]
        return holds

    async def settle(self, reservation: Reservation, nanos: int) -> list[int | None]:
        totals = []
        for subject in reservation.subjects:
            self._live_holds(subject, reservation.month).pop(reservation.span_id, None)
            key = _spent_key(subject, reservation.month)
            spent = self._get(key)
            if spent is None:
                totals.append(None)
            else:
                self.counters[key] = (spent + nanos, self.counters[key][1])
                totals.append(spent + nanos)
        return totals

    async def release(self, reservation: Reservation) -> None:
        for subject in reservation.subjects:
            self._live_holds(subject, reservation.month).pop(reservation.span_id, None)
        day_key = _day_key(reservation)
        if reservation.first and self._get(day_key):
            self.counters[day_key] = (self._get(day_key) - 1, self.counters[day_key][1])

    def clear(self) -> None:
        self.counters.clear()
        self.holds.clear()


_local_store = _LocalStore()


def _store():
    """Where the counters are: Redis, this process's memory, or None while Redis is down."""
    if not settings.REDIS_URL:
        return _local_store
    if not breaker.closed:
        return None
    return _RedisStore(async_client(settings.REDIS_URL))


async def forget_interrupted(rows: list[Generation]) -> None:
    """Calls whose worker died (iridium.ai.recovery): their reservations end, and what they are
    estimated to have cost is spent."""
    store = _store()
    if store is None or not rows:
        return
    from iridium.accounts.models import User

    users = {
        user.pk: user
        async for user in User.objects.select_related("plan", "organization__plan").filter(
            pk__in={row.user_id for row in rows if row.user_id}
        )
    }
    for row in rows:
        user = users.get(row.user_id)
        if user is None:
            continue
        caller = Caller(user=user, organization_id=user.organization_id, plan=user.effective_plan)
        month, day = _periods(row.created_at.astimezone(UTC))
        reservation = Reservation(
            caller=caller, span_id=row.span_id, amount=0, first=row.step == 1,
            subjects=subjects_of(caller), month=month, day=day, store=store,
        )  # fmt: skip
        await settle(reservation, row.total_cost_usd)


@receiver(setting_changed)
def _forget_counters(setting, **kwargs):
    if setting in ("REDIS_URL", "REDIS_TIMEOUT"):
        _local_store.clear()
        breaker.reset()
        _reconcile.needed = False


# --- Where a person stands (the account page) ------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A person's use of their plan: requests today against the daily limit, spend this month
    against the budget (and their organization's, when it has one of its own)."""

    requests_today: int
    daily_limit: int
    spent_this_month: Decimal
    budget: Decimal
    organization_spent: Decimal | None = None
    organization_budget: Decimal | None = None


def standing(user) -> Standing:
    now = datetime.now(UTC)
    plan = user.effective_plan
    mine = Subject(f"user:{user.pk}", plan.monthly_budget_usd, {"user_id": user.pk})
    figures = {}
    organization = user.organization
    if organization is not None and organization.monthly_budget_usd is not None:
        theirs = Subject(
            f"org:{organization.pk}",
            organization.monthly_budget_usd,
            {"organization_id": organization.pk},
        )
        figures = {
            "organization_spent": Decimal(_spent_this_month(theirs, now)) / NANOS,
            "organization_budget": organization.monthly_budget_usd,
        }
    return Standing(
        requests_today=_requests_today(user.pk, now),
        daily_limit=plan.daily_request_limit,
        spent_this_month=Decimal(_spent_this_month(mine, now)) / NANOS,
        budget=plan.monthly_budget_usd,
        **figures,
    )
