"""bench.pages: a conversation page with 20 and with 2,000 messages, served by one uvicorn worker
as in production: time to first byte and page weight, as ratios against /healthz on the same
server in the same run (the page shows the latest messages; earlier ones load on request).

    .venv/bin/python -m bench.pages     (DATABASE_URL set: on PostgreSQL)

Last line: `pages: ttfb_ratio_20=<x> ttfb_ratio_2000=<y> kb_20=<a> kb_2000=<b>`.
"""

import time

import httpx

from bench.common import (
    asgi_server,
    keep_off_server_cores,
    machine,
    median,
    percentile,
    print_table,
    setup_django,
)

SIZES = (20, 2000)
ROUNDS = 5  # each round: every page once per iteration, alternating with /healthz
ITERATIONS = 40


def make_conversations():
    from django.test import Client

    from chat.models import Conversation, Message
    from iridium.accounts.models import User
    from iridium.accounts.services import ensure_default_plans

    ensure_default_plans()
    user, _ = User.objects.get_or_create(username="bench-pages")
    Conversation.objects.filter(user=user).delete()
    conversations = {}
    answer = "A paragraph of an answer, **with Markdown**, of a realistic length. " * 8
    for size in SIZES:
        conversation = Conversation.objects.create(user=user, title=f"{size} messages")
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                role="user" if n % 2 == 0 else "assistant",
                content=f"Question {n}?" if n % 2 == 0 else answer,
                html="" if n % 2 == 0 else f"<p>{answer}</p>",
            )
            for n in range(size)
        )
        conversations[size] = conversation.pk
    browser = Client()
    browser.force_login(user)
    return user, conversations, browser.cookies["sessionid"].value


def ttfb(http, path, headers=None) -> tuple[float, int]:
    """Milliseconds to the first byte of the response, and its size in bytes."""
    started = time.perf_counter()
    with http.stream("GET", path, headers=headers or {}) as response:
        chunks = response.iter_raw()
        first = next(chunks, b"")
        elapsed = (time.perf_counter() - started) * 1000
        size = len(first) + sum(len(chunk) for chunk in chunks)
        assert response.status_code == 200, (path, response.status_code)
    return elapsed, size


def main():
    keep_off_server_cores()
    setup_django(ALLOWED_HOSTS="127.0.0.1,localhost", SESSION_COOKIE_SECURE="false")
    user, conversations, session = make_conversations()
    headers = {"Cookie": f"sessionid={session}"}
    times = {"healthz": [], **{size: [] for size in SIZES}}
    weights = {}
    with asgi_server() as (_, port), httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        for size in SIZES:  # warm up
            ttfb(http, f"/chat/{conversations[size]}/", headers)
        for _ in range(ROUNDS):
            for _ in range(ITERATIONS // ROUNDS):
                times["healthz"].append(ttfb(http, "/healthz")[0])
                for size in SIZES:
                    elapsed, weights[size] = ttfb(http, f"/chat/{conversations[size]}/", headers)
                    times[size].append(elapsed)
    from chat.models import Conversation

    Conversation.objects.filter(user=user).delete()

    base = median(times["healthz"])
    rows = [["/healthz", f"{base:.2f}", f"{percentile(times['healthz'], 0.9):.2f}", "1.00", ""]]
    for size in SIZES:
        rows.append(
            [
                f"conversation, {size} messages",
                f"{median(times[size]):.2f}",
                f"{percentile(times[size], 0.9):.2f}",
                f"{median(times[size]) / base:.2f}",
                f"{weights[size] / 1024:.1f}",
            ]
        )
    print_table(
        f"bench.pages: {ITERATIONS} requests each, alternating ({machine()})",
        rows,
        ["page", "TTFB p50 ms", "TTFB p90 ms", "ratio to /healthz", "page KiB"],
    )
    print(
        f"pages: ttfb_ratio_20={median(times[20]) / base:.2f} "
        f"ttfb_ratio_2000={median(times[2000]) / base:.2f} "
        f"kb_20={weights[20] / 1024:.1f} kb_2000={weights[2000] / 1024:.1f}"
    )


if __name__ == "__main__":
    main()
