"""The demo AI provider, driven by the real openai SDK over real HTTP on loopback."""

import asyncio
import json
import math
import time

import httpx
import openai
import pytest

from iridium.demo_provider import MODELS, DemoProvider
from tests.live import LiveASGIServer, run_lifespan

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_knowledge_base",
        "description": "Search the knowledge base.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
TICKET_TOOL = {
    "type": "function",
    "function": {
        "name": "create_support_ticket",
        "description": "File a support ticket.",
        "parameters": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "description": {"type": "string"}},
            "required": ["title", "description"],
        },
    },
}
TOOLS = [SEARCH_TOOL, TICKET_TOOL]


def ask(text):
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


@pytest.fixture(scope="module")
def provider_server():
    provider = DemoProvider()
    server = LiveASGIServer(provider)
    server.start()
    yield provider, server.url
    server.stop()


@pytest.fixture
def provider(provider_server):
    return provider_server[0]


@pytest.fixture
def url(provider_server):
    return provider_server[1]


@pytest.fixture
async def client(url):
    client = openai.AsyncOpenAI(api_key="demo", base_url=url + "/v1", max_retries=0)
    yield client
    await client.close()


async def collect(stream):
    """Text, reassembled tool calls, finish reason and all chunks of a stream."""
    chunks = [chunk async for chunk in stream]
    text, calls, finish_reason = "", {}, None
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish_reason = choice.finish_reason or finish_reason
            for fragment in choice.delta.tool_calls or []:
                call = calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = fragment.id or call["id"]
                call["name"] += fragment.function.name or ""
                call["arguments"] += fragment.function.arguments or ""
    return text, [calls[index] for index in sorted(calls)], finish_reason, chunks


async def test_models_are_listed(client):
    models = await client.models.list()

    assert [model.id for model in models.data] == list(MODELS)
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"} <= set(MODELS)
    assert models.data[0].owned_by == "iridium-demo"


async def test_answer_is_deterministic_and_under_the_requested_model(client):
    question = "What is Iridium good for?"

    first = await client.chat.completions.create(model="gpt-4.1-nano", messages=ask(question))
    second = await client.chat.completions.create(model="gpt-4.1-nano", messages=ask(question))

    answer = first.choices[0].message.content
    assert answer == second.choices[0].message.content
    assert answer.startswith(f'Demo answer (gpt-4.1-nano): you asked about "{question}". ')
    assert "A real model would" in answer or "real answer" in answer
    assert first.model == "gpt-4.1-nano"
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.tool_calls is None
    prompt_chars = len("You are helpful.") + len(question)
    assert first.usage.prompt_tokens == math.ceil(prompt_chars / 4)
    assert first.usage.completion_tokens == math.ceil(len(answer) / 4)
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0


async def test_stream_matches_the_plain_answer_and_ends_with_usage(client):
    messages = ask("Tell me about budgets")
    plain = await client.chat.completions.create(model="gpt-4o", messages=messages)

    stream = await client.chat.completions.create(
        model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, calls, finish_reason, chunks = await collect(stream)

    assert text == plain.choices[0].message.content
    assert calls == []
    assert finish_reason == "stop"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    word_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(word_chunks) == len(text.split())
    assert all(chunk.model == "gpt-4o" for chunk in chunks)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(client):
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("hello"), stream=True
    )
    *_, chunks = await collect(stream)

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


async def test_cached_directive_reports_cached_tokens_and_is_not_quoted(client):
    cached = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("Summarise the policy [[demo:cached=3]]")
    )
    clamped = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("Summarise [[demo:cached=100000]]")
    )

    assert cached.usage.prompt_tokens_details.cached_tokens == 3
    assert '"Summarise the policy"' in cached.choices[0].message.content
    assert "[[demo" not in cached.choices[0].message.content
    assert clamped.usage.prompt_tokens_details.cached_tokens == clamped.usage.prompt_tokens


@pytest.mark.parametrize(
    ("question", "language"),
    [("Write a Python function to add", "python"), ("a javascript snippet please", "javascript")],
)
async def test_code_questions_get_a_fenced_block(client, question, language):
    completion = await client.chat.completions.create(model="gpt-4o", messages=ask(question))

    assert f"```{language}\n" in completion.choices[0].message.content


async def test_max_completion_tokens_cuts_the_answer(client):
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=ask("hello"), max_completion_tokens=3
    )

    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content) == 12
    assert completion.usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("question", "name", "arguments"),
    [
        (
            "How do I reset my password?",
            "search_knowledge_base",
            {"query": "How do I reset my password?"},
        ),
        (
            "Please open a ticket: my invoice is wrong",
            "create_support_ticket",
            {
                "title": "Please open a ticket: my invoice is wrong",
                "description": "Please open a ticket: my invoice is wrong",
            },
        ),
        (
            'Do it [[demo:tool=create_support_ticket {"title": "T", "description": "D"}]]',
            "create_support_ticket",
            {"title": "T", "description": "D"},
        ),
    ],
    ids=["search-heuristic", "ticket-heuristic", "directive"],
)
async def test_tool_calls_plain_and_streamed(client, question, name, arguments):
    plain = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask(question), tools=TOOLS
    )
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask(question),
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, calls, finish_reason, chunks = await collect(stream)

    message = plain.choices[0].message
    assert plain.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    [call] = message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == name
    assert json.loads(call.function.arguments) == arguments

    assert finish_reason == "tool_calls"
    assert text == ""
    assert calls == [{"id": call.id, "name": name, "arguments": call.function.arguments}]
    fragments = [
        c.choices[0].delta.tool_calls[0]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert fragments[0].id == call.id and fragments[0].function.arguments == ""
    assert len(fragments) >= 3
    assert all(f.id is None and f.function.name is None for f in fragments[1:])
    assert chunks[-1].usage.completion_tokens == math.ceil(len(call.function.arguments) / 4)


async def test_tool_choice_required_named_and_parallel_directives(client):
    required = await client.chat.completions.create(
        model="gpt-4o", messages=ask("Good morning"), tools=TOOLS, tool_choice="required"
    )
    named = await client.chat.completions.create(
        model="gpt-4o",
        messages=ask("Good morning"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "create_support_ticket"}},
    )
    parallel = await client.chat.completions.create(
        model="gpt-4o",
        messages=ask('[[demo:tool=lookup {"id": 1}]] and [[demo:tool=lookup {"id": 2}]]'),
        tools=TOOLS,
    )

    assert required.choices[0].message.tool_calls[0].function.name == "search_knowledge_base"
    assert named.choices[0].message.tool_calls[0].function.name == "create_support_ticket"
    calls = parallel.choices[0].message.tool_calls
    assert [json.loads(call.function.arguments) for call in calls] == [{"id": 1}, {"id": 2}]
    assert {call.function.name for call in calls} == {"lookup"}
    assert calls[0].id != calls[1].id


async def test_answer_after_a_tool_result(client):
    messages = ask("How do I export my data?")
    first = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS
    )
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Exports live under Settings."},
    ]

    second = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS
    )

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == (
        "Demo answer (gpt-4o-mini): I searched the knowledge base: Exports live under Settings."
    )


async def test_tool_choice_none_and_plain_chat_give_text(client):
    none = await client.chat.completions.create(
        model="gpt-4o", messages=ask("search for refunds"), tools=TOOLS, tool_choice="none"
    )
    no_match = await client.chat.completions.create(
        model="gpt-4o", messages=ask("Good morning"), tools=TOOLS
    )

    for completion in (none, no_match):
        assert completion.choices[0].finish_reason == "stop"
        assert completion.choices[0].message.content.startswith("Demo answer (gpt-4o)")


async def test_loop_directive_calls_a_tool_on_every_turn(client):
    messages = ask("Go on [[demo:loop]]")
    for turn in range(3):
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=messages, tools=TOOLS
        )
        assert completion.choices[0].finish_reason == "tool_calls", turn
        call = completion.choices[0].message.tool_calls[0]
        assert call.function.name == "search_knowledge_base"
        messages += [
            completion.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": f"result {turn}"},
        ]

    final = await client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=TOOLS, tool_choice="none"
    )
    assert final.choices[0].message.content.endswith("I searched the knowledge base: result 2")


async def test_rate_limit_fault_is_retried_by_the_sdk(provider, client):
    seen = provider.requests_seen
    started = time.monotonic()

    with pytest.raises(openai.RateLimitError) as raised:
        await client.with_options(max_retries=2).chat.completions.create(
            model="gpt-4o", messages=ask("hi [[demo:fault=429]]")
        )

    assert provider.requests_seen - seen == 3
    assert time.monotonic() - started < 2  # retry-after-ms: 20 keeps the retries quick
    assert raised.value.body["code"] == "rate_limit_exceeded"
    assert raised.value.body["message"] == "Rate limit reached (demo provider)"
    assert raised.value.request_id.startswith("req_")


async def test_server_error_fault(client):
    with pytest.raises(openai.InternalServerError) as raised:
        await client.chat.completions.create(
            model="gpt-4o", messages=ask("hi [[demo:fault=500]]"), stream=True
        )

    assert raised.value.status_code == 500
    assert raised.value.body["type"] == "server_error"


async def test_timeout_fault_trips_the_client_timeout(client):
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.5).chat.completions.create(
            model="gpt-4o", messages=ask("hi [[demo:fault=timeout]]")
        )

    assert time.monotonic() - started < 3


async def test_cut_stream_breaks_off_after_some_words(client):
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=ask("tell me a story [[demo:fault=cut]]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    received = []

    # The server closes the connection mid-body; httpx2's RemoteProtocolError (incomplete
    # chunked read) reaches the caller as openai.APIConnectionError.
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)

    assert "".join(c.choices[0].delta.content or "" for c in received).startswith("Demo answer")
    assert all(chunk.usage is None for chunk in received)


async def test_cut_plain_response_is_a_connection_error(client):
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o", messages=ask("x [[demo:fault=cut]]"))


async def test_slow_directive_delays_each_chunk(client):
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=ask("hi [[demo:slow=0.02]]"), stream=True
    )
    text, *_ = await collect(stream)

    assert time.monotonic() - started >= len(text.split()) * 0.02 * 0.8


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
async def test_first_directive_delays_the_answer_before_anything_is_sent(client, stream):
    started = time.monotonic()
    answer = await client.chat.completions.create(
        model="gpt-4o", messages=ask("hi [[demo:first=0.3]]"), stream=stream
    )
    waited = time.monotonic() - started  # a stream's headers came only after the wait
    assert waited >= 0.3
    if stream:
        text, *_ = await collect(answer)
    else:
        text = answer.choices[0].message.content
    assert text.startswith("Demo answer") and "demo:" not in text


async def test_token_delay_paces_the_stream():
    server = LiveASGIServer(DemoProvider(token_delay=0.01))
    server.start()
    try:
        async with openai.AsyncOpenAI(
            api_key="demo", base_url=server.url + "/v1", max_retries=0
        ) as client:
            started = time.monotonic()
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=ask("hi"), stream=True
            )
            text, *_ = await collect(stream)
            assert time.monotonic() - started >= len(text.split()) * 0.01 * 0.8
    finally:
        server.stop()


async def test_many_concurrent_streams(client):
    async def one(number):
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=ask(f"question {number}"), stream=True
        )
        text, *_ = await collect(stream)
        return text

    texts = await asyncio.gather(*(one(number) for number in range(40)))

    assert all(f'"question {number}"' in text for number, text in enumerate(texts))


async def test_request_id_header(client):
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ask("hi"))

    assert raw.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "gpt-4o"}', "messages"),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "[[demo:nope]]"}]}', None),
    ],
    ids=["malformed", "not-an-object", "no-model", "no-messages", "unknown-directive"],
)
async def test_bad_requests_get_openai_style_400(url, body, param):
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] is None
    assert error["message"]


async def test_unknown_path_and_wrong_method(url, client):
    async with httpx.AsyncClient(base_url=url) as http:
        missing = await http.get("/v1/embeddings")
        wrong = await http.get("/v1/chat/completions")

    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="text-embedding-3-small", input="hi")


async def test_lifespan_is_acknowledged():
    sent = await run_lifespan(DemoProvider())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_clock_directive_streams_send_times(client):
    before = time.time()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hello [[demo:clock]]"}],
        stream=True,
    )
    stamps = []
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                stamps.append(float(choice.delta.content))
    after = time.time()
    assert len(stamps) > 3 and stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after


async def test_words_directive_sets_the_answer_length(client):
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi [[demo:words=120]]"}]
    )
    assert len(completion.choices[0].message.content.split()) == 120


def tool_result(content) -> list[dict]:
    """A conversation whose last message is the result of a tool the model called."""
    call = {"id": "call_1", "type": "function"}
    call["function"] = {"name": "search_knowledge_base", "arguments": "{}"}
    return [
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(content)},
    ]


async def test_answers_from_search_results_in_prose_with_links(client):
    results = {
        "results": [
            {
                "title": "Resetting your password",
                "url": "/support/articles/1/",
                "excerpt": "# Resetting\n\nOpen **Settings** and choose Reset. "
                + "Then follow the link we mail you, which works for an hour. " * 20,
            },
            {"title": "Two-factor sign-in", "url": "/support/articles/2/", "excerpt": "x"},
        ]
    }
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=tool_result(results), tools=TOOLS
    )
    text = completion.choices[0].message.content
    assert text == (
        "Demo answer (gpt-4o-mini): I searched the knowledge base and found 2 articles. The "
        "closest is **[Resetting your password](/support/articles/1/)**: Open "
        "**Settings** and choose Reset.\n\nSee also:\n\n"
        "- [Two-factor sign-in](/support/articles/2/)"
    )
    assert "\\u" not in text and '{"' not in text  # no raw JSON, no escapes


async def test_a_filed_ticket_and_a_failed_tool_are_told_in_prose(client):
    filed = {"ticket_id": 7, "title": "Printer jam", "url": "/support/tickets/7/"}
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=tool_result(filed), tools=TOOLS
    )
    assert completion.choices[0].message.content == (
        "Demo answer (gpt-4o): I filed support ticket #7, **Printer jam**; support will answer "
        "there. You can follow it here: [ticket #7](/support/tickets/7/)."
    )
    failed = await client.chat.completions.create(
        model="gpt-4o",
        messages=tool_result({"error": "The knowledge base is offline."}),
        tools=TOOLS,
    )
    assert failed.choices[0].message.content == (
        "Demo answer (gpt-4o): I tried `search_knowledge_base`, but it failed: "
        "The knowledge base is offline."
    )


async def test_a_long_result_is_cut_at_a_word_not_mid_word(client):
    long = {"results": [{"title": "T", "url": "/a/", "excerpt": "word " * 200}]}
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=tool_result(long), tools=TOOLS
    )
    text = completion.choices[0].message.content
    assert text.endswith("word…")


async def test_plain_answers_give_no_configuration_advice(client):
    for question in ("Good morning", "What is the capital of France?", "Tell me a joke"):
        completion = await client.chat.completions.create(model="gpt-4o", messages=ask(question))
        text = completion.choices[0].message.content
        assert "OPENAI" not in text and "demo provider" not in text
