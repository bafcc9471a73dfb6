"""The tracing service end to end: the real openai SDK against the demo provider over HTTP, the
real posthog client against a loopback capture server, rows in the real database."""

import asyncio
import json
import logging
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from iridium import ai
from iridium.accounts.models import Plan
from iridium.ai import errors, posthog
from iridium.ai.models import Generation, PriceOverride, Span, UnpricedModel
from iridium.ai.recorder import recorder
from tests.fakes.posthog_server import SilentServer, refused_url
from tests.helpers.posthog_schema import (
    ALWAYS_SENT,
    GENERATION_SCHEMA,
    SPAN_SCHEMA,
    assert_follows_schema,
)

SECRET = "zebra-quartz-7781"


def delivered(fake, count, name="$ai_generation"):
    recorder.flush()
    posthog.flush()
    return fake.wait_for(count, name=name)


def user_message(text):
    return [{"role": "user", "content": text}]


async def collect(**kwargs):
    events = [event async for event in ai.stream(ai.Request(**kwargs))]
    return events, events[-1]


async def generations():
    await asyncio.to_thread(recorder.flush)
    return [g async for g in Generation.objects.order_by("created_at", "step")]


async def spans():
    await asyncio.to_thread(recorder.flush)
    return [s async for s in Span.objects.order_by("created_at")]


@pytest.fixture
def member(make_user, organization):
    # Organization plan (enterprise) forces privacy; give the organization the pro plan instead.
    from iridium.accounts.models import Plan

    organization.plan = Plan.objects.get(slug="pro")
    organization.save()
    return make_user("marta", organization=organization)


# --- Streaming and whole answers ------------------------------------------------------------


async def test_stream_records_a_generation_and_reports_it(ai_settings, member, fake_posthog):
    events, completion = await collect(
        user=member,
        feature="chat",
        messages=user_message("Tell me about websockets"),
        trace_id="conversation-42",
        properties={"conversationId": 42, "messageCount": 1},
    )
    deltas = [e.text for e in events if isinstance(e, ai.TextDelta)]
    assert len(deltas) > 3
    assert isinstance(completion, ai.Completion)
    assert "".join(deltas) == completion.text
    assert completion.text.startswith("Demo answer (gpt-4o-mini)")
    assert completion.model == "gpt-4o-mini"  # the pro plan's default model
    assert completion.cost.total_usd > 0

    [row] = await generations()
    assert (row.trace_id, row.feature, row.model, row.provider) == (
        "conversation-42",
        "chat",
        "gpt-4o-mini",
        "openai",
    )
    assert row.user_id == member.pk and row.organization_id == member.organization_id
    assert row.plan_id == member.organization.plan_id
    assert row.stream and row.http_status == 200 and not row.is_error and row.attempts == 1
    assert row.input_tokens == completion.usage.input_tokens > 0
    assert row.output_tokens == completion.usage.output_tokens > 0
    assert row.total_cost_usd == completion.cost.total_usd
    assert row.input_cost_usd + row.output_cost_usd == row.total_cost_usd
    assert 0 < row.time_to_first_token_ms <= row.latency_ms
    assert row.properties == {
        "feature": "chat",
        "plan": "pro",
        "conversationId": 42,
        "messageCount": 1,
    }
    assert row.input == user_message("Tell me about websockets")
    assert row.output == [{"role": "assistant", "content": completion.text}]
    assert row.span_id == completion.span_ids[0]

    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    assert_follows_schema(event, GENERATION_SCHEMA, ALWAYS_SENT | {"$ai_time_to_first_token"})
    properties = event["properties"]
    assert event["distinct_id"] == str(member.pk)
    assert properties["$groups"] == {"company": str(member.organization_id)}
    assert properties["$ai_trace_id"] == "conversation-42"
    assert properties["$ai_span_id"] == row.span_id
    assert properties["$ai_stream"] is True
    assert properties["$ai_latency"] == pytest.approx(row.latency_ms / 1000)
    assert properties["$ai_total_cost_usd"] == pytest.approx(float(row.total_cost_usd))
    assert properties["$ai_input"] == user_message("Tell me about websockets")
    assert properties["$ai_output_choices"] == [{"role": "assistant", "content": completion.text}]
    assert properties["$ai_base_url"] == ai_settings.AI_BASE_URL
    assert properties["conversationId"] == 42 and properties["feature"] == "chat"
    assert "$process_person_profile" not in properties


async def test_complete_calls_without_streaming(ai_settings, user, fake_posthog):
    completion = await ai.complete(
        ai.Request(
            user=user,
            feature="code-generation",
            messages=user_message("a python function"),
            trace_id="codegen-1-1",
        )
    )
    assert "```" in completion.text
    [row] = await generations()
    assert not row.stream and row.time_to_first_token_ms is None and row.http_status == 200
    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    assert_follows_schema(event, GENERATION_SCHEMA, ALWAYS_SENT)
    assert event["properties"]["$ai_stream"] is False
    assert "$ai_time_to_first_token" not in event["properties"]


async def test_advanced_complexity_uses_the_plans_advanced_model(ai_settings, make_user):
    pro_user = await sync_to_async(make_user)("pria", plan="pro")
    completion = await ai.complete(
        ai.Request(
            user=pro_user,
            feature="code-generation",
            messages=user_message("hard task"),
            trace_id="t-adv",
            complexity="advanced",
        )
    )
    assert completion.model == "gpt-4o"
    assert completion.text.startswith("Demo answer (gpt-4o)")


# --- Tools ----------------------------------------------------------------------------------


def kb_tool(calls):
    async def search(arguments, context):
        calls.append((arguments, context))
        return {"results": [{"title": "Resetting your password", "id": 7}]}

    return ai.Tool(
        name="search_knowledge_base",
        description="Search the knowledge base.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
        run=search,
    )


async def test_tool_loop_runs_tools_as_child_spans(ai_settings, user, fake_posthog):
    calls = []
    events, completion = await collect(
        user=user,
        feature="chat",
        messages=user_message("How do I reset my password?"),
        trace_id="conversation-7",
        tools=[kb_tool(calls)],
    )
    [(arguments, context)] = calls
    assert arguments == {"query": "How do I reset my password?"}
    assert context.user.pk == user.pk and context.trace_id == "conversation-7"
    [tool_event] = [e for e in events if isinstance(e, ai.ToolCalled)]
    assert tool_event.name == "search_knowledge_base" and not tool_event.is_error
    assert completion.steps == 2
    assert completion.text.startswith("Demo answer (gpt-4o-mini): I searched the knowledge base")
    assert "Resetting your password" in completion.text

    first, second = await generations()
    assert (first.step, second.step) == (1, 2)
    assert first.finish_reason == "tool_calls" and second.finish_reason == "stop"
    assert first.tools == ["search_knowledge_base"]
    root, tool_span = sorted(await spans(), key=lambda s: s.name != "chat")
    assert root.name == "chat" and root.parent_id == ""
    assert tool_span.name == "tool:search_knowledge_base"
    assert first.parent_id == second.parent_id == tool_span.parent_id == root.span_id
    assert tool_span.input_state == arguments and tool_span.output_state["results"]
    assert second.input[-1]["role"] == "tool"

    generation_events = await asyncio.to_thread(delivered, fake_posthog, 2)
    span_events = fake_posthog.wait_for(2, name="$ai_span")
    for event in generation_events:
        assert_follows_schema(event, GENERATION_SCHEMA, ALWAYS_SENT | {"$ai_tools"})
        assert event["properties"]["$ai_parent_id"] == root.span_id
    for event in span_events:
        assert_follows_schema(event, SPAN_SCHEMA)
    assert generation_events[0]["properties"]["$ai_tools"][0]["function"]["name"] == (
        "search_knowledge_base"
    )


async def test_step_limit_stops_the_loop_with_an_answer(ai_settings, user):
    calls = []
    _, completion = await collect(
        user=user,
        feature="chat",
        messages=user_message("Search forever [[demo:loop]]"),
        trace_id="conversation-8",
        tools=[kb_tool(calls)],
        max_steps=3,
    )
    assert len(calls) == 2  # steps 1 and 2 called the tool; step 3 could not
    assert completion.steps == 3
    assert completion.finish_reason == "stop" and completion.text
    rows = await generations()
    assert [r.step for r in rows] == [1, 2, 3]


async def test_default_step_limit_is_five(ai_settings, user):
    calls = []
    _, completion = await collect(
        user=user,
        feature="chat",
        messages=user_message("again [[demo:loop]]"),
        trace_id="conversation-9",
        tools=[kb_tool(calls)],
    )
    assert completion.steps == 5 and len(calls) == 4


async def test_a_tool_acts_for_the_caller_whatever_the_model_asks(ai_settings, user, make_user):
    other = await sync_to_async(make_user)("olga")
    seen = []

    async def create_ticket(arguments, context):
        seen.append(context.user.pk)
        return {"ticket": 1, "owner": context.user.username}

    tool = ai.Tool(
        name="create_support_ticket",
        description="File a ticket for the signed-in user.",
        parameters={"type": "object", "properties": {"title": {"type": "string"}}},
        run=create_ticket,
    )
    arguments = json.dumps({"title": "x", "user_id": other.pk})
    directive = f"[[demo:tool=create_support_ticket {arguments}]]"
    events, _ = await collect(
        user=user, feature="chat", messages=user_message(directive), trace_id="c-1", tools=[tool]
    )
    assert seen == [user.pk]
    [called] = [e for e in events if isinstance(e, ai.ToolCalled)]
    assert called.result["owner"] == user.username


async def test_unknown_tool_and_failing_tool_give_the_model_an_error(ai_settings, user):
    async def broken(arguments, context):
        raise ai.ToolFailed("The knowledge base is offline.")

    tool = ai.Tool("search_knowledge_base", "Search.", {"type": "object"}, broken)
    events, completion = await collect(
        user=user,
        feature="chat",
        messages=user_message(
            '[[demo:tool=no_such_tool]] [[demo:tool=search_knowledge_base {"query": "q"}]]'
        ),
        trace_id="c-2",
        tools=[tool],
    )
    unknown, failed = [e for e in events if isinstance(e, ai.ToolCalled)]
    assert unknown.is_error and "no tool named" in unknown.result["error"]
    assert failed.is_error and failed.result == {"error": "The knowledge base is offline."}
    assert completion.text  # the model still answers
    tool_spans = [s for s in await spans() if s.name.startswith("tool:")]
    assert all(s.is_error for s in tool_spans) and len(tool_spans) == 2


# --- Privacy and anonymity ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["call", "plan", "feature"])
async def test_privacy_mode_keeps_content_out_of_everything(
    ai_settings, make_user, fake_posthog, caplog, how
):
    caplog.set_level(logging.DEBUG)
    owner = await sync_to_async(make_user)("pam", plan="enterprise" if how == "plan" else "free")
    feature = "content-generation" if how == "feature" else "chat"
    calls = []
    events, completion = await collect(
        user=owner,
        feature=feature,
        messages=user_message(f"How do I keep {SECRET} private?"),
        trace_id="c-private",
        tools=[kb_tool(calls)],
        privacy=how == "call",
    )
    assert completion.text  # the user still gets their answer
    assert SECRET in calls[0][0]["query"]  # and the content did flow through the call
    rows = await generations()
    assert len(rows) == 2  # the step that called the tool, then the answer
    for row in rows:
        assert row.privacy_mode and row.input is None and row.output is None
        assert SECRET not in str(row.properties)
    recorded_spans = await spans()
    assert len(recorded_spans) == 2  # the tool loop and the tool
    for span in recorded_spans:
        assert span.input_state is None and span.output_state is None
    events = await asyncio.to_thread(delivered, fake_posthog, 2)
    span_events = fake_posthog.wait_for(2, name="$ai_span")
    for event in [*events, *span_events]:
        assert "$ai_input" not in event["properties"]
        assert "$ai_output_choices" not in event["properties"]
        assert "$ai_input_state" not in event["properties"]
    assert SECRET not in json.dumps(fake_posthog.events())
    assert SECRET not in caplog.text


async def test_anonymous_calls_use_the_trace_as_distinct_id(ai_settings, fake_posthog):
    await ai.complete(
        ai.Request(user=None, feature="public-demo", messages=user_message("hi"), trace_id="t-anon")
    )
    [row] = await generations()
    assert row.user_id is None and row.plan_id == (await Plan.objects.aget(slug="free")).pk
    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    assert event["distinct_id"] == "t-anon"
    assert event["properties"]["$process_person_profile"] is False


# --- Faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message", "status", "attempts"),
    [
        ("429", errors.PROVIDER_BUSY, 429, 3),
        ("500", errors.PROVIDER_FAILED, 500, 3),
        ("timeout", errors.PROVIDER_TIMEOUT, None, 1),
        ("cut", errors.PROVIDER_CUT, 200, 1),
        # Words come, then the provider goes quiet for longer than the read timeout.
        ("stall", errors.PROVIDER_CUT, 200, 1),
    ],
)
async def test_provider_faults_are_recorded_and_explained(
    ai_settings, user, fake_posthog, fault, message, status, attempts
):
    if fault in ("timeout", "stall"):
        ai_settings.AI_READ_TIMEOUT = 0.3
        ai_settings.AI_MAX_RETRIES = 0
    deltas = []
    with pytest.raises(ai.ProviderError) as raised:
        async for event in ai.stream(
            ai.Request(
                user=user,
                feature="chat",
                messages=user_message(f"hello [[demo:fault={fault}]]"),
                trace_id="c-fault",
            )
        ):
            deltas.append(event)
    assert str(raised.value) == message
    [row] = await generations()
    assert row.is_error and row.http_status == status and row.attempts == attempts
    assert f"{attempts} attempt(s)" in row.error
    if fault in ("cut", "stall"):  # the partial answer is kept
        assert deltas and row.output[0]["content"] == "".join(d.text for d in deltas)
    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    assert_follows_schema(event, GENERATION_SCHEMA, ALWAYS_SENT | {"$ai_error"})
    assert event["properties"]["$ai_is_error"] is True
    assert event["properties"]["$ai_http_status"] == (status or 0)


async def test_stopping_a_stream_records_the_partial_answer(ai_settings, user):
    received = []
    stream = ai.stream(
        ai.Request(
            user=user,
            feature="chat",
            messages=user_message("a long story [[demo:slow=0.01]]"),
            trace_id="c-stop",
        )
    )
    async for event in stream:
        received.append(event.text)
        if len(received) == 3:
            break
    await stream.aclose()
    [row] = await generations()
    assert row.finish_reason == "cancelled" and not row.is_error
    assert row.output[0]["content"] == "".join(received)
    assert row.properties["usageEstimated"] is True
    assert row.output_tokens > 0 and row.total_cost_usd > 0


# --- Pricing --------------------------------------------------------------------------------


async def test_cached_input_tokens_are_priced_as_cached(ai_settings, user):
    completion = await ai.complete(
        ai.Request(
            user=user,
            feature="chat",
            messages=user_message("x" * 4000 + " [[demo:cached=512]]"),
            trace_id="c-cache",
        )
    )
    usage = completion.usage
    assert usage.cached_tokens == 512
    expected = calc_price(
        PriceUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=512,
            output_tokens=usage.output_tokens,
        ),
        "gpt-4o-mini",
        provider_id="openai",
    )
    assert completion.cost.input_usd == expected.input_price
    assert completion.cost.total_usd == expected.total_price
    uncached = calc_price(
        PriceUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        "gpt-4o-mini",
        provider_id="openai",
    )
    assert completion.cost.input_usd < uncached.input_price


async def test_unknown_model_price_is_recorded_as_unknown_and_listed(
    ai_settings, user, fake_posthog, plans
):
    free = plans["free"]
    free.default_model = "acme-finetune-v1"
    await free.asave()
    completion = await ai.complete(
        ai.Request(user=user, feature="chat", messages=user_message("hi"), trace_id="c-x")
    )
    assert completion.cost is None
    [row] = await generations()
    assert row.total_cost_usd is None and row.input_cost_usd is None
    unpriced = await UnpricedModel.objects.aget(model="acme-finetune-v1")
    assert unpriced.calls == 1
    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    assert "$ai_total_cost_usd" not in event["properties"]

    await PriceOverride.objects.acreate(
        model="acme-finetune-v1",
        input_usd_per_mtok=Decimal("2"),
        cached_input_usd_per_mtok=Decimal("1"),
        output_usd_per_mtok=Decimal("8"),
    )
    priced = await ai.complete(
        ai.Request(
            user=user, feature="chat", messages=user_message("hi [[demo:cached=1]]"), trace_id="c-y"
        )
    )
    usage = priced.usage
    expected_input = (Decimal(usage.input_tokens - 1) * 2 + 1) / 1_000_000
    assert priced.cost.input_usd == expected_input
    assert priced.cost.output_usd == Decimal(usage.output_tokens) * 8 / 1_000_000


# --- PostHog unreachable --------------------------------------------------------------------


@pytest.mark.parametrize("unreachable", ["refused", "silent"])
async def test_calls_go_on_at_full_speed_when_posthog_is_unreachable(
    ai_settings, user, unreachable
):
    with SilentServer() as silent:
        ai_settings.POSTHOG_HOST = refused_url() if unreachable == "refused" else silent.url
        ai_settings.POSTHOG_TIMEOUT = 30
        durations = []
        for index in range(20):
            started = time.perf_counter()
            await ai.complete(
                ai.Request(
                    user=user, feature="chat", messages=user_message(f"q{index}"), trace_id="c-ph"
                )
            )
            durations.append(time.perf_counter() - started)
        # A call that waited for PostHog would take its 30 s timeout; these take milliseconds.
        assert max(durations) < 1.0
        assert len(await generations()) == 20
        posthog.reset(flush_timeout=0)  # do not wait for the unreachable server at teardown


async def test_the_deadline_bounds_all_attempts(ai_settings, user):
    ai_settings.AI_READ_TIMEOUT = 30
    ai_settings.AI_DEADLINE_SECONDS = 0.3
    started = time.perf_counter()
    with pytest.raises(ai.ProviderError) as raised:
        await ai.complete(
            ai.Request(
                user=user,
                feature="chat",
                messages=user_message("[[demo:fault=timeout]]"),
                trace_id="c-deadline",
            )
        )
    assert time.perf_counter() - started < 5
    assert str(raised.value) == errors.PROVIDER_TIMEOUT
    [row] = await generations()
    assert row.is_error and "TimeoutError" in row.error


async def test_without_a_posthog_key_nothing_is_sent_and_rows_are_still_written(
    ai_settings, user, fake_posthog
):
    ai_settings.POSTHOG_API_KEY = ""
    await ai.complete(
        ai.Request(user=user, feature="chat", messages=user_message("hi"), trace_id="c-off")
    )
    assert len(await generations()) == 1
    await asyncio.to_thread(posthog.flush)
    assert fake_posthog.events() == [] and fake_posthog.requests == []
