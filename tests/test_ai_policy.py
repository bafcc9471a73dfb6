"""The policy layer of iridium.ai: routing by plan and flags, the response cache, budgets and
limits. Real openai and posthog SDKs over loopback; real Redis when REDIS_URL is set (CI)."""

import asyncio
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from iridium import ai
from iridium.ai import budgets, errors, posthog
from iridium.ai.models import BudgetWarning, FlagOverride, Generation, PriceOverride
from iridium.ai.recorder import recorder
from tests.fakes.posthog_server import SilentServer
from tests.helpers.ai import ask, spend


async def rows():
    await asyncio.to_thread(recorder.flush)
    return [g async for g in Generation.objects.order_by("created_at", "pk")]


@pytest.fixture
def provider_calls(demo_provider_server):
    app = demo_provider_server.app
    start = app.requests_seen
    return lambda: app.requests_seen - start


@pytest.fixture(autouse=True)
def _fresh_counters():
    budgets._local_store.clear()
    budgets.breaker.reset()
    yield


@pytest.fixture
def pro_user(make_user):
    return make_user("priya", plan="pro")


def override(key, value, payload=None):
    return FlagOverride.objects.create(key=key, value=value, payload=payload)


# --- Routing --------------------------------------------------------------------------------


async def test_plan_default_model_and_reason(ai_settings, pro_user):
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-1")
    )
    assert completion.model == "gpt-4o-mini"
    [row] = await rows()
    assert row.routing_reason == "plan default" and row.flags == {} and row.variant == ""


async def test_complexity_hint_picks_the_advanced_model(ai_settings, pro_user):
    completion = await ai.complete(
        ai.Request(
            user=pro_user,
            feature="code-generation",
            messages=ask(),
            trace_id="r-2",
            complexity="advanced",
        )
    )
    assert completion.model == "gpt-4o"
    [row] = await rows()
    assert row.routing_reason == "complexity hint: advanced"


async def test_posthog_flag_turns_on_the_advanced_model(ai_settings, pro_user, fake_posthog):
    ai_settings.AI_FLAGS_WAIT_SECONDS = 5  # the first evaluation; bounded, never the default 0.05
    fake_posthog.flags = {"advanced-ai-model": True}
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-3")
    )
    assert completion.model == "gpt-4o"
    [row] = await rows()
    assert row.routing_reason == "flag advanced-ai-model"
    assert row.flags == {"advanced-ai-model": True}
    await asyncio.to_thread(posthog.flush)
    [event] = fake_posthog.wait_for(1, name="$ai_generation")
    assert event["properties"]["$feature/advanced-ai-model"] is True
    [request] = fake_posthog.flag_requests
    assert request["distinct_id"] == str(pro_user.pk)


async def test_overrides_win_over_posthog(ai_settings, pro_user, fake_posthog):
    ai_settings.AI_FLAGS_WAIT_SECONDS = 5
    fake_posthog.flags = {"advanced-ai-model": True}
    await sync_to_async(override)("advanced-ai-model", "false")
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-4")
    )
    assert completion.model == "gpt-4o-mini"
    [row] = await rows()
    assert row.flags == {"advanced-ai-model": False}


async def test_overrides_work_without_posthog(ai_settings, pro_user):
    ai_settings.POSTHOG_API_KEY = ""
    await sync_to_async(override)("advanced-ai-model", "true")
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-5")
    )
    assert completion.model == "gpt-4o"


async def test_experiment_variant_chooses_the_model(ai_settings, pro_user):
    await sync_to_async(override)("ai-model-experiment", "mini-41", {"model": "gpt-4.1-mini"})
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-6")
    )
    assert completion.model == "gpt-4.1-mini"
    [row] = await rows()
    assert row.variant == "mini-41" and row.routing_reason == "experiment variant mini-41"
    assert row.flags == {"ai-model-experiment": "mini-41"}


async def test_experiment_variant_can_change_the_prompt(ai_settings, pro_user):
    await sync_to_async(override)("ai-model-experiment", "brief", {"system_prompt": "Be brief."})
    messages = [{"role": "system", "content": "Be thorough."}, *ask()]
    await ai.complete(ai.Request(user=pro_user, feature="chat", messages=messages, trace_id="r-7"))
    [row] = await rows()
    assert row.input[0] == {"role": "system", "content": "Be brief."}
    assert row.model == "gpt-4o-mini" and row.variant == "brief"


async def test_kill_switch_refuses_with_a_clear_message(ai_settings, pro_user, provider_calls):
    await sync_to_async(override)("ai-kill-switch", "refuse")
    with pytest.raises(ai.AIError) as raised:
        await ai.complete(ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-8"))
    assert str(raised.value) == errors.AI_DISABLED
    assert provider_calls() == 0 and await rows() == []


async def test_kill_switch_can_force_the_cheapest_model(ai_settings, pro_user):
    await sync_to_async(override)("ai-kill-switch", "cheapest")
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-9")
    )
    assert completion.model == "gpt-4.1-nano"
    [row] = await rows()
    assert row.routing_reason == "kill switch: cheapest model"


async def test_kill_switch_from_posthog_uses_the_configured_mode(
    ai_settings, pro_user, fake_posthog
):
    ai_settings.AI_FLAGS_WAIT_SECONDS = 5
    ai_settings.AI_KILL_SWITCH_MODE = "cheapest"
    fake_posthog.flags = {"ai-kill-switch": True}
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-10")
    )
    assert completion.model == "gpt-4.1-nano"


async def test_unreachable_posthog_does_not_stall_a_call(ai_settings, pro_user):
    with SilentServer() as silent:
        ai_settings.POSTHOG_HOST = silent.url
        started = time.perf_counter()
        completion = await ai.complete(
            ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-11")
        )
        elapsed = time.perf_counter() - started
        posthog.reset(flush_timeout=0)
    assert completion.model == "gpt-4o-mini"  # the default
    assert elapsed < ai_settings.AI_FLAGS_WAIT_SECONDS + 0.5


async def test_last_known_flag_values_are_kept_when_posthog_goes_away(
    ai_settings, pro_user, fake_posthog
):
    ai_settings.AI_FLAGS_WAIT_SECONDS = 5
    fake_posthog.flags = {"advanced-ai-model": True}
    first = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-12")
    )
    assert first.model == "gpt-4o"
    with SilentServer() as silent:
        ai_settings.AI_FLAGS_TTL_SECONDS = 0  # every call wants a new evaluation
        ai_settings.POSTHOG_HOST = silent.url
        started = time.perf_counter()
        second = await ai.complete(
            ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-13")
        )
        assert time.perf_counter() - started < 1
        posthog.reset(flush_timeout=0)
    assert second.model == "gpt-4o"


# --- Cache ----------------------------------------------------------------------------------


async def test_cache_hit_for_the_same_user_is_free_and_records_what_it_saved(
    ai_settings, user, fake_posthog, provider_calls
):
    first = await ai.complete(
        ai.Request(
            user=user,
            feature="code-generation",
            messages=ask("a python function"),
            trace_id="c-1",
            cache=True,
        )
    )
    second = await ai.complete(
        ai.Request(
            user=user,
            feature="code-generation",
            messages=ask("a python function"),
            trace_id="c-2",
            cache=True,
        )
    )
    assert provider_calls() == 1
    assert second.from_cache and not first.from_cache
    assert second.text == first.text and second.model == first.model
    assert second.cost.total_usd == 0 and second.saved_cost == first.cost.total_usd
    miss, hit = await rows()
    assert not miss.cache_hit and hit.cache_hit
    assert hit.total_cost_usd == 0 and hit.saved_cost_usd == miss.total_cost_usd
    await asyncio.to_thread(posthog.flush)
    [event] = fake_posthog.wait_for(1, name="ai_cache_hit")
    assert event["properties"]["feature"] == "code-generation"
    assert event["properties"]["saved_cost_usd"] == pytest.approx(float(miss.total_cost_usd))
    assert len(fake_posthog.events("$ai_generation")) == 1


async def test_a_streamed_cache_hit_streams(ai_settings, user, provider_calls):
    for trace in ("s-1", "s-2"):
        events = [
            e
            async for e in ai.stream(
                ai.Request(
                    user=user,
                    feature="chat",
                    messages=ask("tell me a story"),
                    trace_id=trace,
                    cache=True,
                )
            )
        ]
    deltas = [e.text for e in events if isinstance(e, ai.TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == events[-1].text
    assert events[-1].from_cache and provider_calls() == 1


async def test_another_user_never_gets_the_cached_answer(
    ai_settings, user, make_user, provider_calls
):
    other = await sync_to_async(make_user)("otto")
    for caller in (user, other):
        completion = await ai.complete(
            ai.Request(
                user=caller,
                feature="chat",
                messages=ask("same question"),
                trace_id="c-3",
                cache=True,
            )
        )
        assert not completion.from_cache
    assert provider_calls() == 2


async def test_cached_answers_expire_after_their_ttl(ai_settings, user, provider_calls):
    for _ in range(2):
        await ai.complete(
            ai.Request(user=user, feature="chat", messages=ask("q"), trace_id="c-4", cache=1)
        )
    assert provider_calls() == 1
    await asyncio.sleep(1.2)
    expired = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("q"), trace_id="c-4", cache=1)
    )
    assert not expired.from_cache and provider_calls() == 2


async def test_per_feature_ttl_and_opt_in(ai_settings, user, provider_calls):
    ai_settings.AI_CACHE_TTLS = {"chat": 600}
    for _ in range(2):
        await ai.complete(ai.Request(user=user, feature="chat", messages=ask("q2"), trace_id="c-5"))
    assert provider_calls() == 2  # not opted in
    for _ in range(2):
        await ai.complete(
            ai.Request(user=user, feature="chat", messages=ask("q2"), trace_id="c-5", cache=True)
        )
    assert provider_calls() == 3


async def test_tool_calls_are_never_cached(ai_settings, user, provider_calls):
    async def search(arguments, context):
        return {"results": []}

    tool = ai.Tool("search_knowledge_base", "Search.", {"type": "object"}, search)
    for _ in range(2):
        await ai.complete(
            ai.Request(
                user=user,
                feature="chat",
                messages=ask("how do I log in?"),
                trace_id="c-6",
                tools=[tool],
                cache=True,
            )
        )
    assert provider_calls() == 4  # two steps each time


# --- Budgets and limits ---------------------------------------------------------------------


async def test_daily_request_limit(ai_settings, user, plans, provider_calls):
    free = plans["free"]
    free.daily_request_limit = 3
    await free.asave()
    for index in range(3):
        await ai.complete(
            ai.Request(user=user, feature="chat", messages=ask(f"{index}"), trace_id="b-1")
        )
    with pytest.raises(errors.LimitReached) as raised:
        await ai.complete(ai.Request(user=user, feature="chat", messages=ask("4"), trace_id="b-1"))
    assert str(raised.value) == errors.DAILY_LIMIT_REACHED.format(limit=3)
    assert provider_calls() == 3 and len(await rows()) == 3


async def test_cache_hits_are_requests_admitted_and_counted_in_one_step(
    ai_settings, user, plans, provider_calls, monkeypatch
):
    free = plans["free"]
    free.daily_request_limit = 3
    await free.asave()
    scripts = []
    run_script = budgets.run_script

    async def counted(client, script, keys, arguments):
        scripts.append(script)
        return await run_script(client, script, keys, arguments)

    monkeypatch.setattr(budgets, "run_script", counted)
    request = dict(user=user, feature="code-generation", messages=ask("cached"), cache=True)
    first = await ai.complete(ai.Request(**request, trace_id="h-1"))
    scripts.clear()
    second = await ai.complete(ai.Request(**request, trace_id="h-2"))
    assert second.from_cache and not first.from_cache
    # One script admits and counts it (with Redis; the embedded set-up counts in memory).
    assert len(scripts) == (1 if settings.REDIS_URL else 0)
    assert (await ai.complete(ai.Request(**request, trace_id="h-3"))).from_cache
    with pytest.raises(errors.LimitReached) as raised:
        await ai.complete(ai.Request(**request, trace_id="h-4"))
    assert str(raised.value) == errors.DAILY_LIMIT_REACHED.format(limit=3)
    assert provider_calls() == 1


async def test_a_failed_call_does_not_count_as_a_request(ai_settings, user, plans):
    free = plans["free"]
    free.daily_request_limit = 1
    await free.asave()
    with pytest.raises(ai.ProviderError):
        await ai.complete(
            ai.Request(
                user=user, feature="chat", messages=ask("[[demo:fault=500]]"), trace_id="b-2"
            )
        )
    # The limit of one request a day is not used up by the call that failed.
    answered = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("ok"), trace_id="b-2")
    )
    assert answered.text and not answered.from_cache


async def test_monthly_budget_of_the_plan(ai_settings, user, plans, provider_calls):
    await sync_to_async(spend)("1.00", user=user)  # the free plan's whole budget
    with pytest.raises(errors.LimitReached) as raised:
        await ai.complete(ai.Request(user=user, feature="chat", messages=ask(), trace_id="b-3"))
    assert str(raised.value) == errors.USER_BUDGET_REACHED.format(budget=Decimal("1.00"))
    assert provider_calls() == 0
    warnings = [w async for w in BudgetWarning.objects.filter(user=user).order_by("percent")]
    assert [w.percent for w in warnings] == [80, 100]


async def test_monthly_budget_of_the_organization(
    ai_settings, make_user, organization, provider_calls
):
    organization.monthly_budget_usd = Decimal("5.00")
    await organization.asave()
    member = await sync_to_async(make_user)("mia", organization=organization)
    colleague = await sync_to_async(make_user)("carl", organization=organization)
    await sync_to_async(spend)("5.00", user=colleague, organization=organization)
    with pytest.raises(errors.LimitReached) as raised:
        await ai.complete(ai.Request(user=member, feature="chat", messages=ask(), trace_id="b-4"))
    assert str(raised.value) == errors.ORGANIZATION_BUDGET_REACHED.format(budget=Decimal("5.00"))
    assert provider_calls() == 0


@pytest.fixture
def costly_model(plans):
    """A model at $1,000 per million tokens: every call costs cents, deterministically."""
    PriceOverride.objects.create(
        model="acme-costly", input_usd_per_mtok=Decimal(1000), output_usd_per_mtok=Decimal(1000)
    )
    free = plans["free"]
    free.default_model = "acme-costly"
    free.save()
    return free


async def test_warning_at_80_percent_is_recorded_once(ai_settings, user, costly_model):
    first = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("x"), trace_id="b-5")
    )
    per_call = first.cost.total_usd
    assert per_call > Decimal("0.01")
    # Just under 80% of the $1 budget, counting the call already made.
    await sync_to_async(spend)(str(Decimal("0.79") - per_call), user=user)
    await _forget_counters()
    await ai.complete(ai.Request(user=user, feature="chat", messages=ask("x"), trace_id="b-5"))
    await ai.complete(ai.Request(user=user, feature="chat", messages=ask("x"), trace_id="b-5"))
    warnings = [w async for w in BudgetWarning.objects.filter(user=user)]
    assert [w.percent for w in warnings] == [80]
    assert warnings[0].budget_usd == Decimal("1.00")


async def _forget_counters():
    """Drop the counters so that they are reconciled from the generation table, once it has
    every call's row (a call the table still has in flight would count its reservation)."""
    from django.core.cache import cache

    await asyncio.to_thread(recorder.flush)
    budgets._local_store.clear()
    await asyncio.to_thread(cache.clear)  # on Redis: the whole test database, counters included


async def test_calls_at_once_overspend_by_at_most_one_reservation(ai_settings, user, costly_model):
    """Each call holds the most it can cost while it runs: however many run at once, the month's
    spend exceeds the budget by at most one call's reservation."""
    probe = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("x"), trace_id="b-6")
    )
    per_call = probe.cost.total_usd
    budget = Decimal("1.00")
    await sync_to_async(spend)(str(budget - per_call * 4), user=user)
    await _forget_counters()
    outcomes = []

    async def one(index):
        try:
            await ai.complete(
                ai.Request(user=user, feature="chat", messages=ask("x"), trace_id=f"b-6-{index}")
            )
            outcomes.append("ok")
        except errors.LimitReached:
            outcomes.append("refused")

    await asyncio.gather(*(one(i) for i in range(30)))
    assert "ok" in outcomes and "refused" in outcomes
    await asyncio.to_thread(recorder.flush)
    rows = [g async for g in Generation.objects.filter(user=user)]
    total = sum((g.total_cost_usd for g in rows), Decimal(0))
    most = max(g.reserved_cost_usd for g in rows if g.reserved_cost_usd is not None)
    assert per_call < most  # a reservation is the most a call can cost: more than it does
    assert total <= budget + most


async def test_flags_are_evaluated_locally_with_a_secret_key(ai_settings, pro_user, fake_posthog):
    ai_settings.AI_FLAGS_WAIT_SECONDS = 5
    ai_settings.POSTHOG_SECRET_KEY = "phs_test"
    # Every flag the service asks for is defined, so none needs a remote evaluation.
    fake_posthog.flags = {
        "advanced-ai-model": True,
        "ai-kill-switch": False,
        "ai-model-experiment": False,
    }
    completion = await ai.complete(
        ai.Request(user=pro_user, feature="chat", messages=ask(), trace_id="r-14")
    )
    assert completion.model == "gpt-4o"
    assert fake_posthog.definition_requests and fake_posthog.flag_requests == []


async def test_cached_answers_are_ordinary_django_cache_entries(ai_settings, user):
    from django.core.cache import cache

    from iridium.ai import cache as response_cache

    completion = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("q3"), trace_id="c-7", cache=True)
    )
    # Every call asks for at most the plan's output cap.
    parameters = {"max_completion_tokens": user.plan.max_output_tokens}
    key = response_cache.key_for(
        user_id=user.pk, model=completion.model, messages=ask("q3"), parameters=parameters
    )
    assert key.startswith(f"user:{user.pk}:ai:")
    entry = await asyncio.to_thread(cache.get, key)
    assert entry["text"] == completion.text and entry["model"] == completion.model
    await asyncio.to_thread(cache.delete, key)
    again = await ai.complete(
        ai.Request(user=user, feature="chat", messages=ask("q3"), trace_id="c-7", cache=True)
    )
    assert not again.from_cache


@given(st.text())
def test_a_cached_answer_is_cut_into_pieces_that_join_to_it_exactly(text):
    from iridium.ai.service import _pieces

    pieces = list(_pieces(text))
    assert "".join(pieces) == text
    assert all(pieces)
