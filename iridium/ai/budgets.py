"""Budgets and limits, checked before every call and counted atomically.

What is checked, for a signed-in caller (anonymous calls have no budget):
- the plan's daily request limit (UTC day; a refused request does not count);
- the plan's monthly budget per user, and the organization's monthly budget when it has one.

Counters live in Redis (`REDIS_URL`), so every worker sees the same figures: the request count
is an INCR, spending an INCRBY in billionths of a dollar. A check reads the spending so far and a
call adds its cost when it ends, so concurrent calls can overspend by at most the calls already in
flight. Counters are reconciled with the generation table: a counter Redis does not have (new
period, expired after RECONCILE_SECONDS, Redis restarted) starts from the table's figures.

On the embedded default (no REDIS_URL) the counters are kept in this process's memory.

When Redis is configured but unreachable, budgets neither fail open nor closed: they are checked
against the generation table directly (slower, and blind to calls still in flight), and a warning
is logged once a minute. When Redis answers again, it is used again.

Reaching 80% and 100% of a budget is recorded once per budget and month (`BudgetWarning`).
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Sum
from django.dispatch import receiver

from iridium.infra.breaker import Breaker
from iridium.infra.redis import async_client

from . import errors
from .models import BudgetWarning, Generation
from .records import Caller

logger = logging.getLogger(__name__)

NANOS = Decimal(1_000_000_000)  # counters hold billionths of a dollar: integers for INCRBY
RECONCILE_SECONDS = 3600
DAY_TTL_SECONDS = 2 * 86400
WARNING_LEVELS = (80, 100)
KEY_PREFIX = "iridium:budget:"

breaker = Breaker("Redis (budget counters)")


@dataclass
class Admission:
    """A call that passed the checks; `charge` adds its cost to the counters it was checked on."""

    caller: Caller
    day_key: str = ""
    spend_keys: list[str] = field(default_factory=list)
    budgets: list[tuple[str, Decimal, dict]] = field(default_factory=list)  # key, budget, subject
    store: "object | None" = None


def _periods(now: datetime) -> tuple[str, str]:
    return now.strftime("%Y-%m"), now.strftime("%Y-%m-%d")


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def admit(caller: Caller) -> Admission | None:
    """Refuse (raise `errors.LimitReached`) or admit a call; None for anonymous callers."""
    if caller.user is None:
        return None
    store = _store()
    if store is not None:
        try:
            return await _admit(caller, store)
        except (redis.RedisError, OSError) as error:
            breaker.trip(error, "checking budgets against the database")
    return await _admit(caller, _DatabaseStore())


async def release(admission: Admission | None) -> None:
    """The call failed before the provider answered: it does not count as a request."""
    if admission is None or admission.store is None:
        return
    try:
        await admission.store.add(admission.day_key, -1)
    except (redis.RedisError, OSError) as error:
        breaker.trip(error, "checking budgets against the database")


async def charge(admission: Admission | None, cost: Decimal | None) -> None:
    """Add a finished call's cost to the counters it was admitted on."""
    if admission is None or not cost or admission.store is None:
        return
    nanos = int(cost * NANOS)
    try:
        totals = await admission.store.charge(admission.spend_keys, nanos)
    except (redis.RedisError, OSError) as error:
        breaker.trip(error, "checking budgets against the database")
        return
    for (_, budget, subject), total in zip(admission.budgets, totals, strict=True):
        if total is not None:
            await _note_crossings(subject, budget, before=total - nanos, after=total)


async def _admit(caller: Caller, store) -> Admission:
    now = datetime.now(UTC)
    month, day = _periods(now)
    plan = caller.plan
    user_id = caller.user_id
    day_key = f"{KEY_PREFIX}requests:user:{user_id}:{day}"
    budgets = [
        (f"{KEY_PREFIX}spent:user:{user_id}:{month}", plan.monthly_budget_usd, {"user_id": user_id})
    ]
    organization = caller.user.organization if caller.organization_id else None
    if organization is not None and organization.monthly_budget_usd is not None:
        budgets.append(
            (
                f"{KEY_PREFIX}spent:org:{organization.pk}:{month}",
                organization.monthly_budget_usd,
                {"organization_id": organization.pk},
            )
        )
    spend_keys = [key for key, _, _ in budgets]

    count, spent = await store.hit(day_key, spend_keys)
    if count == 1:
        # A new counter: Redis may have lost today's count (restart, eviction); take the table's.
        earlier = await _requests_since(user_id, _day_start(now))
        if earlier:
            count = await store.add(day_key, earlier)
    if count > plan.daily_request_limit:
        await store.add(day_key, -1)
        raise errors.LimitReached(errors.DAILY_LIMIT_REACHED.format(limit=plan.daily_request_limit))

    for index, (key, budget, subject) in enumerate(budgets):
        if spent[index] is None:
            spent[index] = await store.initialise(key, await _spent_since(subject, now))
        spent_usd = Decimal(spent[index]) / NANOS
        if spent_usd >= budget:
            await store.add(day_key, -1)
            message = (
                errors.USER_BUDGET_REACHED
                if "user_id" in subject
                else errors.ORGANIZATION_BUDGET_REACHED
            )
            await _note_crossings(subject, budget, before=0, after=spent[index])
            raise errors.LimitReached(message.format(budget=budget))
        if isinstance(store, _DatabaseStore):
            await _note_crossings(subject, budget, before=0, after=spent[index])
    return Admission(
        caller=caller, day_key=day_key, spend_keys=spend_keys, budgets=budgets, store=store
    )


async def _requests_since(user_id: int, since: datetime) -> int:
    # One answer is one request: its first provider call (step 1) or its cache hit.
    return await Generation.objects.filter(user_id=user_id, created_at__gte=since, step=1).acount()


async def _spent_since(subject: dict, now: datetime) -> int:
    total = await Generation.objects.filter(
        created_at__gte=_month_start(now), **subject
    ).aaggregate(total=Sum("total_cost_usd"))
    return int((total["total"] or Decimal(0)) * NANOS)


async def _note_crossings(subject: dict, budget: Decimal, *, before: int, after: int) -> None:
    if budget <= 0:
        return
    for percent in WARNING_LEVELS:
        threshold = budget * NANOS * percent / 100
        if before < threshold <= after or (before == 0 and after >= threshold):
            await BudgetWarning.objects.aget_or_create(
                period=datetime.now(UTC).strftime("%Y-%m"),
                percent=percent,
                **subject,
                defaults={"budget_usd": budget, "spent_usd": Decimal(after) / NANOS},
            )


# --- Where the counters live ----------------------------------------------------------------


class _RedisStore:
    _charge_script = """
    local totals = {}
    for i, key in ipairs(KEYS) do
        if redis.call('EXISTS', key) == 1 then
            totals[i] = redis.call('INCRBY', key, ARGV[1])
        else
            totals[i] = false
        end
    end
    return totals
    """

    def __init__(self, client: redis.asyncio.Redis):
        self.client = client

    async def hit(self, day_key, spend_keys):
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(day_key)
        pipe.expire(day_key, DAY_TTL_SECONDS)
        if spend_keys:
            pipe.mget(spend_keys)
        results = await pipe.execute()
        spent = [int(v) if v is not None else None for v in results[2]] if spend_keys else []
        return results[0], spent

    async def add(self, key, amount):
        return await self.client.incrby(key, amount)

    async def initialise(self, key, value):
        # Another worker may have initialised it meanwhile: whichever came first stands.
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, value, nx=True, ex=RECONCILE_SECONDS)
        pipe.get(key)
        _, stored = await pipe.execute()
        return int(stored)

    async def charge(self, keys, amount):
        if not keys:
            return []
        totals = await self.client.eval(self._charge_script, len(keys), *keys, amount)
        return [int(t) if t is not None else None for t in totals]


class _LocalStore:
    """The same counters in this process's memory, for the embedded default (one process)."""

    def __init__(self):
        self._values: dict[str, tuple[int, float]] = {}

    def _get(self, key):
        value = self._values.get(key)
        if value is None or value[1] < time.monotonic():
            self._values.pop(key, None)
            return None
        return value[0]

    async def hit(self, day_key, spend_keys):
        count = await self.add(day_key, 1, ttl=DAY_TTL_SECONDS)
        return count, [self._get(key) for key in spend_keys]

    async def add(self, key, amount, ttl=DAY_TTL_SECONDS):
        current = self._get(key) or 0
        expires = self._values.get(key, (0, time.monotonic() + ttl))[1]
        self._values[key] = (current + amount, expires)
        return current + amount

    async def initialise(self, key, value):
        existing = self._get(key)
        if existing is not None:
            return existing
        self._values[key] = (value, time.monotonic() + RECONCILE_SECONDS)
        return value

    async def charge(self, keys, amount):
        totals = []
        for key in keys:
            existing = self._get(key)
            if existing is None:
                totals.append(None)
            else:
                self._values[key] = (existing + amount, self._values[key][1])
                totals.append(existing + amount)
        return totals


class _DatabaseStore:
    """Redis is unreachable: every figure comes from the generation table, nothing is counted
    (the table itself records each call)."""

    async def hit(self, day_key, spend_keys):
        user_id = int(day_key.split(":")[-2])
        earlier = await _requests_since(user_id, _day_start(datetime.now(UTC)))
        return earlier + 1, [None] * len(spend_keys)

    async def add(self, key, amount):
        return 0

    async def initialise(self, key, value):
        return value

    async def charge(self, keys, amount):
        return [None] * len(keys)


_local_store = _LocalStore()


def _store():
    """Where the counters are: Redis, this process's memory, or None while Redis is down."""
    if not settings.REDIS_URL:
        return _local_store
    if not breaker.closed:
        return None
    return _RedisStore(async_client(settings.REDIS_URL))


@receiver(setting_changed)
def _forget_counters(setting, **kwargs):
    if setting in ("REDIS_URL", "REDIS_TIMEOUT"):
        _local_store._values.clear()
        breaker.reset()
