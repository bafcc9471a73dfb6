"""Budgets and limits hold when many answers start at once on two workers, with Redis and
while Redis is away: each call reserves the most it can cost before it starts, so a month's
spend exceeds a budget by at most one call's reservation, and limits admit exactly their number.
"""

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Max, Sum

from chat.models import Conversation
from iridium.ai.models import Generation, PriceOverride
from tests.helpers.production import (
    frames_until,
    open_chat,
    production_environment,
    require_production_services,
    running,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

COSTLY = "iridium-test-costly"  # any name: the demo provider answers under it


@pytest.fixture
def workers(ai_settings, private_redis):
    require_production_services()
    environment = production_environment(
        ai_base_url=ai_settings.AI_BASE_URL, REDIS_URL=private_redis.url, REDIS_RETRY_SECONDS=30
    )
    # A test of its own for each pair, with a Redis of its own: Redis killed, a worker would not
    # try it again for REDIS_RETRY_SECONDS.
    with running(environment, 2) as servers:
        yield servers


async def ask_at_once(workers, user, count, content):
    """`count` conversations of `user`, half on each worker, all sent at once; the frame that
    ended each (answer_finished or refused)."""
    cookie = await sync_to_async(session_cookie)(user)
    sockets = []
    for index in range(count):
        conversation = await Conversation.objects.acreate(user=user)
        socket, _ = await open_chat(workers[index % 2], conversation.pk, cookie)
        sockets.append(socket)
    await asyncio.gather(
        *(socket.send(json.dumps({"type": "send", "content": content})) for socket in sockets)
    )

    async def outcome(socket):
        frames = await frames_until(socket, "answer_finished", "refused", "error", timeout=60)
        await socket.close()
        return frames[-1]

    return await asyncio.gather(*(outcome(socket) for socket in sockets))


async def rows_written(user, count, timeout=20):
    for _ in range(int(timeout * 10)):
        done = await Generation.objects.filter(user=user, in_flight=False).acount()
        if done >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} rows were never written")


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-killed"])
async def test_a_budget_is_overspent_by_at_most_one_call(
    workers, private_redis, make_user, plans, redis_up
):
    free = plans["free"]
    free.default_model = COSTLY
    free.monthly_budget_usd = Decimal("10.00")
    free.max_output_tokens = 100
    free.max_answers_in_flight = 20
    free.daily_request_limit = 1000
    await free.asave()
    # About $2-3 a call, up to some $5 reserved.
    await PriceOverride.objects.acreate(
        model=COSTLY, input_usd_per_mtok=Decimal(5000), output_usd_per_mtok=Decimal(20000)
    )
    user = await sync_to_async(make_user)("spender", plan="free")
    if not redis_up:
        private_redis.kill()
    outcomes = await ask_at_once(workers, user, 20, "Tell me about lighthouses [[demo:slow=0.05]]")
    admitted = [o for o in outcomes if o["type"] == "answer_finished"]
    refused = [o for o in outcomes if o["type"] == "refused"]
    assert len(admitted) + len(refused) == 20 and refused and admitted
    assert all(o["code"] == "limit_reached" for o in refused)
    await rows_written(user, len(admitted))
    figures = await Generation.objects.filter(user=user).aaggregate(
        spent=Sum("total_cost_usd"), most=Max("reserved_cost_usd")
    )
    assert figures["most"] > 0
    assert figures["spent"] <= free.monthly_budget_usd + figures["most"], figures


async def test_a_daily_limit_admits_exactly_its_number_while_redis_is_away(
    workers, private_redis, make_user, plans
):
    free = plans["free"]
    free.daily_request_limit = 5
    free.max_answers_in_flight = 20
    await free.asave()
    user = await sync_to_async(make_user)("daily", plan="free")
    private_redis.kill()
    outcomes = await ask_at_once(workers, user, 10, "Hello [[demo:slow=0.05]]")
    assert sorted(o["type"] for o in outcomes) == ["answer_finished"] * 5 + ["refused"] * 5


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-killed"])
async def test_a_user_may_have_only_so_many_answers_in_flight(
    workers, private_redis, make_user, plans, redis_up
):
    free = plans["free"]
    free.max_answers_in_flight = 2
    await free.asave()
    user = await sync_to_async(make_user)("eager", plan="free")
    if not redis_up:  # counted in the generation table: the rows of answers in flight
        private_redis.kill()
    outcomes = await ask_at_once(
        workers, user, 6, "A long story [[demo:slow=0.05]] [[demo:words=60]]"
    )
    assert sorted(o["type"] for o in outcomes) == ["answer_finished"] * 2 + ["refused"] * 4
    refused = [o for o in outcomes if o["type"] == "refused"]
    assert all(o["code"] == "too_many_in_flight" for o in refused)
    assert "2 answers being written" in refused[0]["message"]
