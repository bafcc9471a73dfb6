"""Budgets and limits across Redis going away and coming back, and Redis restarting with its
data lost, while calls are in flight: the calls the tables admitted meanwhile (or that Redis
forgot) still hold their reservations once Redis is used again, and their settling reaches
Redis's counters, so a month's spend exceeds a budget by at most one call and the counters
agree with the tables once the calls have ended.

On a private redis-server, killed and started again (empty) on the same port.
"""

import asyncio
from contextlib import aclosing
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from asgiref.sync import sync_to_async
from django.db.models import Max

from iridium import ai
from iridium.ai import budgets, errors
from iridium.ai.models import Generation, PriceOverride
from iridium.ai.recorder import recorder
from iridium.infra.redis import async_client
from tests.helpers.ai import ask, spend

pytestmark = pytest.mark.django_db(transaction=True)

COSTLY = "iridium-test-costly"
SLOW = "A story [[demo:slow=0.05]] [[demo:words=40]]"  # about 2 s in flight


@pytest.fixture
def on_private_redis(ai_settings, private_redis):
    ai_settings.REDIS_URL = private_redis.url
    ai_settings.REDIS_RETRY_SECONDS = 0.2
    budgets.breaker.reset()
    return private_redis


@pytest.fixture
def costly(plans):
    """Each call reserves about $0.90 (100 output tokens at most, at $9,000 a million) and
    costs less; the budget is $1.00, of which a user made as below has spent $0.50."""
    PriceOverride.objects.create(
        model=COSTLY, input_usd_per_mtok=Decimal(100), output_usd_per_mtok=Decimal(9000)
    )
    free = plans["free"]
    free.default_model = COSTLY
    free.max_output_tokens = 100
    free.monthly_budget_usd = Decimal("1.00")
    free.max_answers_in_flight = 10
    free.daily_request_limit = 100
    free.save()
    return free


@pytest.fixture
def spender(make_user, costly):
    user = make_user("spender", plan="free")
    spend("0.50", user=user)
    return user


async def answer(user, text, trace_id="t"):
    """The whole answer, streamed (a `Completion`)."""
    request = ai.Request(user=user, feature="chat", messages=ask(text), trace_id=trace_id)
    async with aclosing(ai.stream(request)) as events:
        async for event in events:
            last = event
    return last


async def in_flight(user, count=1):
    """Wait until `count` of the user's calls are in flight in the table."""
    for _ in range(200):
        if await Generation.objects.filter(user=user, in_flight=True).acount() >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the call never started")


async def restart(server):
    """Redis stops and starts again, empty, unnoticed by this process: it has no connection
    open to Redis meanwhile (as a worker that was not using it), so it never finds it away."""
    server.kill()
    server.start()
    await async_client(server.url).connection_pool.disconnect()


async def counters_agree_with_the_tables(server, user):
    """Once the calls have ended, Redis's spend counter and the user's requests today are what
    the generation table says, and no reservation is left."""
    await asyncio.to_thread(recorder.flush)
    client = redis.Redis.from_url(server.url)
    now = datetime.now(UTC)
    subject = budgets.Subject(f"user:{user.pk}", Decimal(1), {"user_id": user.pk})
    month, day = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d")
    spent = client.get(f"{budgets.KEY_PREFIX}spent:{subject.name}:{month}")
    requests = client.get(f"{budgets.KEY_PREFIX}requests:user:{user.pk}:{day}")
    held = client.hgetall(f"{budgets.KEY_PREFIX}held:{subject.name}:{month}")
    in_table = await sync_to_async(budgets._spent_this_month)(subject, now)
    requests_in_table = await sync_to_async(budgets._requests_today)(user.pk, now)
    assert (int(spent), int(requests), held) == (in_table, requests_in_table, {})


async def at_most_one_call_over(user, budget):
    figures = await Generation.objects.filter(user=user).aaggregate(most=Max("reserved_cost_usd"))
    spent = await sync_to_async(budgets._spent_this_month)(
        budgets.Subject("user", budget, {"user_id": user.pk}), datetime.now(UTC)
    )
    assert Decimal(spent) / budgets.NANOS <= budget + figures["most"]


async def test_a_call_the_tables_admitted_still_holds_once_redis_is_back(
    on_private_redis, spender, costly
):
    on_private_redis.kill()
    first = asyncio.create_task(answer(spender, SLOW))  # admitted by the tables
    await in_flight(spender)

    on_private_redis.start()  # back (empty) while the first call is still in flight
    await asyncio.sleep(0.3)  # past REDIS_RETRY_SECONDS
    with pytest.raises(errors.LimitReached):  # $0.50 spent and some $0.90 held, of $1.00
        await answer(spender, "and another")
    assert budgets.breaker.closed  # Redis said no, not the tables

    await first  # ends now that Redis is back: its cost reaches Redis's counter
    await counters_agree_with_the_tables(on_private_redis, spender)
    await at_most_one_call_over(spender, costly.monthly_budget_usd)


async def test_a_redis_that_restarts_empty_keeps_the_calls_in_flight(
    on_private_redis, spender, costly
):
    first = asyncio.create_task(answer(spender, SLOW))  # admitted by Redis
    await in_flight(spender)
    await restart(on_private_redis)
    with pytest.raises(errors.LimitReached):
        await answer(spender, "and another")
    assert budgets.breaker.closed

    await first
    await counters_agree_with_the_tables(on_private_redis, spender)
    await at_most_one_call_over(spender, costly.monthly_budget_usd)


async def test_answers_the_tables_admitted_count_in_flight_once_redis_is_back(
    on_private_redis, spender, costly
):
    costly.monthly_budget_usd = Decimal(100)
    costly.max_answers_in_flight = 1
    await costly.asave()
    on_private_redis.kill()
    first = asyncio.create_task(answer(spender, SLOW))
    await in_flight(spender)
    on_private_redis.start()
    await asyncio.sleep(0.3)
    with pytest.raises(errors.TooManyInFlight):
        await answer(spender, "and another")
    assert budgets.breaker.closed
    await first
    await answer(spender, "now there is room")
    await counters_agree_with_the_tables(on_private_redis, spender)


async def test_a_request_that_failed_after_redis_came_back_is_not_counted(
    on_private_redis, spender, costly, ai_settings
):
    """A call the tables admitted fails before answering once Redis is back: it is not a
    request, in Redis's count of today's requests as in the table."""
    ai_settings.AI_READ_TIMEOUT = 1.0
    ai_settings.AI_MAX_RETRIES = 0
    costly.monthly_budget_usd = Decimal(100)
    await costly.asave()
    on_private_redis.kill()
    failing = asyncio.create_task(answer(spender, "[[demo:fault=timeout]]"))
    await in_flight(spender)
    on_private_redis.start()
    await asyncio.sleep(0.3)
    await answer(spender, "hello")  # admitted by Redis: its counters start from the table
    with pytest.raises(errors.ProviderError):
        await failing
    await counters_agree_with_the_tables(on_private_redis, spender)
