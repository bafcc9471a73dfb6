"""bench.overhead: the time iridium.ai adds to a call, against the bare openai SDK sending the
same request to the same loopback upstream in the same run (non-streamed and streamed; p50 and
p99); and a cache hit, in the service alone and end to end through an HTTP request to a server.

Both sides send the same body by the same SDK call (`post`, as iridium.ai.provider does); the
bare side reads a streamed answer as bytes and decodes each event, as little as a caller can.

Both sides talk to the demo provider in another process; the service does everything it does in
production: resolves the user and plan, picks the model, prices the usage, queues the generation
row (written by the recorder thread meanwhile) and the PostHog event (sent to a loopback capture
server). The calls alternate, so drift on a noisy machine hits both sides alike.
"""

import asyncio
import json
import os
import time

import httpx
import openai
import uvloop
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bench.common import (
    asgi_server,
    keep_off_server_cores,
    machine,
    median,
    percentile,
    print_table,
    setup_django,
    upstreams,
)

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "400"))
WARMUP = 30
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Summarise what a websocket is in two sentences."},
]


def bare_body(model, *, streaming):
    """The body the service sends for MESSAGES (the same builder), so that both sides send the
    same request."""
    from iridium.ai import wire

    return wire.build_request(
        model=model,
        messages=MESSAGES,
        parameters={},
        tools=[],
        allow_tools=False,
        streaming=streaming,
    )


async def bare_call(client, body):
    await client.post("/chat/completions", body=body, cast_to=ChatCompletion)


async def bare_stream(client, body):
    """The SDK's request, its event stream read as bytes and each event's JSON decoded: the
    least a caller of the SDK does with a streamed answer."""
    response = await client.post(
        "/chat/completions",
        body=body,
        cast_to=ChatCompletion,
        options={"headers": {"X-Stainless-Raw-Response": "stream"}},  # the response unread
        stream=True,
        stream_cls=openai.AsyncStream[ChatCompletionChunk],
    )
    try:
        pending = b""
        async for chunk in response.http_response.aiter_bytes():
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                    json.loads(line[5:])
    finally:
        await response.close()


async def service_call(ai, user, index):
    await ai.complete(
        ai.Request(user=user, feature="bench", messages=MESSAGES, trace_id=f"bench-{index}")
    )


async def service_stream(ai, user, index):
    async for _ in ai.stream(
        ai.Request(user=user, feature="bench", messages=MESSAGES, trace_id=f"bench-{index}")
    ):
        pass


async def service_cache_hit(ai, user, index):
    completion = await ai.complete(
        ai.Request(
            user=user, feature="bench", messages=MESSAGES, trace_id=f"bench-{index}", cache=True
        )
    )
    assert completion.from_cache or index == 0


async def timed(coroutine) -> float:
    started = time.perf_counter()
    await coroutine
    return (time.perf_counter() - started) * 1000


async def measure(user, model):
    from django.conf import settings

    from iridium import ai

    bare = openai.AsyncOpenAI(api_key="not-needed", base_url=settings.AI_BASE_URL)
    body, stream_body = bare_body(model, streaming=False), bare_body(model, streaming=True)
    results = {
        name: [] for name in ("bare", "service", "bare_stream", "service_stream", "cache_hit")
    }
    for index in range(WARMUP + ITERATIONS):
        samples = {
            "bare": await timed(bare_call(bare, body)),
            "service": await timed(service_call(ai, user, index)),
            "service_stream": await timed(service_stream(ai, user, index)),
            "bare_stream": await timed(bare_stream(bare, stream_body)),
            "cache_hit": await timed(service_cache_hit(ai, user, index)),
        }
        if index >= WARMUP:
            for name, value in samples.items():
                results[name].append(value)
    await bare.close()
    return results


HTTP_ITERATIONS = int(os.environ.get("BENCH_HTTP_ITERATIONS", "200"))
CODE_FORM = {
    "prompt": "A function that says hello to a user by name.",
    "language": "python",
    "framework": "",
    "complexity": "simple",
}


def http_cache_hit(user) -> tuple[list[float], list[float]]:
    """A code generation answered from the cache, end to end: the form's POST to one uvicorn
    worker until its redirect to the result (the view waits for the answer's first output),
    alternating with /healthz on the same server as the baseline. Milliseconds."""
    from django.test import Client

    from codegen.models import Creation

    browser = Client()
    browser.force_login(user)
    session = browser.cookies["sessionid"].value
    Creation.objects.filter(user=user).delete()
    with (
        asgi_server() as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        page = http.get("/generate/", headers={"Cookie": f"sessionid={session}"})
        csrf = page.cookies["csrftoken"]
        headers = {"Cookie": f"sessionid={session}; csrftoken={csrf}"}
        form = {**CODE_FORM, "csrfmiddlewaretoken": csrf}

        def post():
            response = http.post("/generate/new/code/", data=form, headers=headers)
            assert response.status_code == 302, response.status_code

        post()  # the first is answered by the provider and fills the cache
        time.sleep(1)
        healthz, hits = [], []
        for index in range(WARMUP + HTTP_ITERATIONS):
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            middle = time.perf_counter()
            post()
            ended = time.perf_counter()
            if index >= WARMUP:
                healthz.append((middle - started) * 1000)
                hits.append((ended - middle) * 1000)
        time.sleep(1)  # the last answers are saved
    cached = Creation.objects.filter(user=user, from_cache=True).count()
    assert cached >= WARMUP + HTTP_ITERATIONS, f"only {cached} generations came from the cache"
    Creation.objects.filter(user=user).delete()
    return healthz, hits


def main():
    keep_off_server_cores()
    with upstreams() as (provider_url, posthog_url):
        setup_django(
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            OPENAI_BASE_URL=provider_url,
            POSTHOG_API_KEY="phc_bench",
            POSTHOG_HOST=posthog_url,
        )
        from iridium.accounts.models import User
        from iridium.accounts.services import ensure_default_plans
        from iridium.ai import posthog
        from iridium.ai.models import Generation
        from iridium.ai.recorder import recorder

        ensure_default_plans()
        user, _ = User.objects.get_or_create(username="bench-user")
        # Budgets and the daily limit are checked on every call, as in production; the plan
        # is generous enough for the benchmark's calls.
        plan = user.effective_plan
        plan.daily_request_limit = 1_000_000
        plan.monthly_budget_usd = 1_000_000
        plan.save()
        # uvloop, as under uvicorn in production; both sides share the loop.
        uvloop.install()
        results = asyncio.run(measure(user, user.effective_plan.default_model))
        results["healthz"], results["http_hit"] = http_cache_hit(user)
        recorder.flush(timeout=60)
        posthog.flush(timeout=30)
        Generation.objects.filter(feature="bench").delete()

    def added(kind, fraction):
        service = results["service" + kind]
        bare = results["bare" + kind]
        return percentile(service, fraction) - percentile(bare, fraction)

    rows = []
    for label, kind in (("whole answer", ""), ("streamed", "_stream")):
        bare, service = results["bare" + kind], results["service" + kind]
        rows.append(
            [
                label,
                f"{median(bare):.3f}",
                f"{median(service):.3f}",
                f"{added(kind, 0.5):.3f}",
                f"{percentile(bare, 0.99):.3f}",
                f"{percentile(service, 0.99):.3f}",
                f"{added(kind, 0.99):.3f}",
            ]
        )
    rows.append(
        [
            "cache hit (service)",
            "",
            f"{median(results['cache_hit']):.3f}",
            "",
            "",
            f"{percentile(results['cache_hit'], 0.99):.3f}",
            "",
        ]
    )
    rows.append(
        [
            "cache hit (HTTP POST)",
            f"{median(results['healthz']):.3f}",
            f"{median(results['http_hit']):.3f}",
            f"{median(results['http_hit']) - median(results['healthz']):.3f}",
            f"{percentile(results['healthz'], 0.99):.3f}",
            f"{percentile(results['http_hit'], 0.99):.3f}",
            "",
        ]
    )
    print_table(
        f"bench.overhead: {ITERATIONS} calls each ({HTTP_ITERATIONS} over HTTP: the baseline is "
        f"GET /healthz on the same server), {machine()}",
        rows,
        [
            "call",
            "sdk p50 ms",
            "service p50 ms",
            "added p50",
            "sdk p99",
            "service p99",
            "added p99",
        ],
    )
    print(
        f"added_p50_ms={added('', 0.5):.3f} added_p99_ms={added('', 0.99):.3f} "
        f"stream_added_p50_ms={added('_stream', 0.5):.3f} "
        f"stream_added_p99_ms={added('_stream', 0.99):.3f} "
        f"cache_hit_p50_ms={percentile(results['cache_hit'], 0.5):.3f} "
        f"http_cache_hit_p50_ms={median(results['http_hit']):.3f} "
        f"healthz_p50_ms={median(results['healthz']):.3f}"
    )


if __name__ == "__main__":
    main()
