"""bench.streams: many chats streaming at once over real websockets against one ASGI server.

The upstream (the demo provider, in its own process) streams every answer at a fixed rate and
writes into each token the wall-clock time it sent it (`[[demo:clock]]`). The benchmark opens N
conversations on one uvicorn worker (another process, on a core of its own: bench.common), sends
a message in each, spread over a few seconds, and for every token received in the browser-side
socket computes how long it took since the upstream sent it. The baseline is the same N streams
read straight from the upstream in the same run, as cheaply as a client can: what Iridium adds
is the difference. Memory per open conversation is the server's resident memory at the peak of
N streams, less before them, divided by N. Each round prints the CPU share every process used.
Before the levels, the server's CPU to start and to finish one answer is measured alone, one
answer at a time (BENCH_CPU_ANSWERS, 40): start_cpu_ms and finish_cpu_ms, medians.

Each level runs BENCH_STREAM_REPEATS times (3): the table shows the median and the worst of the
added p99s. BENCH_STREAM_LEVELS=100,500 picks the levels; BENCH_TIMELINE=1 prints the delays
second by second (where a pause falls). With DATABASE_URL and REDIS_URL set it measures the
production set-up (PostgreSQL through the pool, channels-redis); without, the embedded one.
"""

import asyncio
import json
import os
import time

import aiohttp
import uvloop
import websockets

from bench.common import (
    asgi_server,
    ensure_database,
    keep_off_server_cores,
    machine,
    median,
    percentile,
    print_table,
    setup_django,
    upstreams,
)
from iridium.infra.serving import settle_garbage_collector

LEVELS = [int(n) for n in os.environ.get("BENCH_STREAM_LEVELS", "100,300,500").split(",")]
REPEATS = int(os.environ.get("BENCH_STREAM_REPEATS", "3"))
PRODUCTION = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
SETUP = "production" if PRODUCTION else "embedded"
TOKEN_INTERVAL = 0.1  # seconds between tokens of one stream, at the upstream
TARGET_MS = 20.0
START_SPREAD = 5.0  # seconds over which the N messages are sent
# Answers of ANSWER_WORDS tokens (10 s each); the N messages are sent over START_SPREAD seconds,
# as people press Enter at different moments, so that N answers are open at once for a while.
ANSWER_WORDS = 100
MESSAGE = f"Tell me about websockets [[demo:clock]] [[demo:words={ANSWER_WORDS}]]"
# One answer at a time, short, for the CPU of its start and its finish.
CPU_ANSWERS = int(os.environ.get("BENCH_CPU_ANSWERS", "40"))
CPU_MESSAGE = "Tell me about sockets [[demo:words=3]]"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == os.getpid():
                pids.append(int(entry))
    return pids


class CpuMeter:
    """CPU used by each process between start() and stop(), as a share of one core."""

    def __init__(self, **pids):
        self.pids = pids

    def __enter__(self):
        self.started = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc):
        elapsed = time.monotonic() - self.started
        self.share = {
            name: (cpu_seconds(pid) - self.before[name]) / elapsed
            for name, pid in self.pids.items()
        }

    def __str__(self):
        return " ".join(f"{name}={share:.0%}" for name, share in self.share.items())


def cpu_ns(pid: int) -> int:
    """CPU time a process has used so far, in nanoseconds, summed over its threads (the
    scheduler's own account: finer than the clock ticks of /proc/<pid>/stat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return total


async def start_and_finish_cpu(port, cookie, conversation_ids, server_pid):
    """The server's CPU for each answer's start and finish, one answer at a time on an
    otherwise idle server: start is from the question sent to the first token (question saved,
    answer row, busy check, history, flags, budget, request built and sent), finish from the
    last token until the worker is idle again (final save, rendering, the record and the event,
    written in the background). The idle server's own CPU over the same time is subtracted."""
    headers = {"Cookie": cookie}
    settle = 0.4  # after an answer's end: its record and event are written meanwhile
    before = cpu_ns(server_pid)
    await asyncio.sleep(2)
    idle_per_second = (cpu_ns(server_pid) - before) / 2
    starts, finishes = [], []
    for conversation_id in conversation_ids:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/",
            additional_headers=headers,
            origin=f"http://127.0.0.1:{port}",
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await asyncio.sleep(settle)
            sent_at, sent_cpu = time.monotonic(), cpu_ns(server_pid)
            await ws.send(json.dumps({"type": "send", "content": CPU_MESSAGE}))
            first = last = None
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "delta":
                    now = (time.monotonic(), cpu_ns(server_pid))
                    first = first or now
                    last = now
                elif frame["type"] in ("answer_finished", "refused", "error"):
                    assert frame["type"] == "answer_finished", frame
                    break
            await asyncio.sleep(settle)
            done = (time.monotonic(), cpu_ns(server_pid))
        starts.append(first[1] - sent_cpu - idle_per_second * (first[0] - sent_at))
        finishes.append(done[1] - last[1] - idle_per_second * (done[0] - last[0]))
    return [ns / 1e6 for ns in starts], [ns / 1e6 for ns in finishes]


def stamps_in(text: str):
    for word in text.split():
        if word[:1].isdigit():
            yield float(word)


async def through_iridium(port, cookie, conversation_ids, server_pid):
    """Per-token delays (ms) through websockets, and the server's peak memory meanwhile."""
    headers = {"Cookie": cookie}
    sockets = []
    for conversation_id in conversation_ids:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/",
            additional_headers=headers,
            origin=f"http://127.0.0.1:{port}",  # the page of this server
            max_queue=None,
        )
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        sockets.append(ws)
    idle_kb = rss_kb(server_pid)
    peak_kb = idle_kb
    delays: list[float] = []
    timeline = []

    async def read(ws, start_after):
        await asyncio.sleep(start_after)
        await ws.send(json.dumps({"type": "send", "content": MESSAGE}))
        while True:
            message = await ws.recv()
            now = time.time()
            frame = json.loads(message)
            if frame["type"] == "delta":
                for sent in stamps_in(frame["text"]):
                    delays.append((now - sent) * 1000)
                    timeline.append((now, (now - sent) * 1000))
            elif frame["type"] in ("answer_finished", "refused", "error"):
                assert frame["type"] == "answer_finished", frame
                return

    async def watch_memory():
        nonlocal peak_kb
        while True:
            peak_kb = max(peak_kb, rss_kb(server_pid))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_memory())
    spread = [START_SPREAD * index / len(sockets) for index in range(len(sockets))]
    await asyncio.gather(*(read(ws, after) for ws, after in zip(sockets, spread, strict=True)))
    watcher.cancel()
    if os.environ.get("BENCH_TIMELINE"):
        first = min(t for t, _ in timeline)
        by_second = {}
        for t, d in timeline:
            by_second.setdefault(int(t - first), []).append(d)
        for second, values in sorted(by_second.items()):
            print(
                f"  t={second:2d}s tokens={len(values):5d} p50={percentile(values, 0.5):7.1f} "
                f"p99={percentile(values, 0.99):7.1f} max={max(values):7.1f}"
            )
    for ws in sockets:
        await ws.close()
    return delays, (peak_kb - idle_kb) / len(sockets)


async def straight_from_upstream(provider_url, count):
    """The same streams read straight from the upstream, as cheaply as a client can: the event
    stream's lines over aiohttp, each decoded from JSON (no SDK objects)."""
    delays: list[float] = []
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": MESSAGE}],
        "stream": True,
    }
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def read(start_after):
            await asyncio.sleep(start_after)
            async with session.post(f"{provider_url}/chat/completions", json=request) as response:
                async for line in response.content:
                    now = time.time()
                    if not line.startswith(b"data: {"):
                        continue
                    for choice in json.loads(line[6:])["choices"]:
                        text = choice["delta"].get("content")
                        if text:
                            delays.extend((now - sent) * 1000 for sent in stamps_in(text))

        await asyncio.gather(*(read(START_SPREAD * index / count) for index in range(count)))
    return delays


def main():
    keep_off_server_cores()
    settle_garbage_collector()  # the load generator's own pauses would count as delay
    with upstreams(token_delay=TOKEN_INTERVAL) as (provider_url, _):
        os.environ.update(OPENAI_BASE_URL=provider_url, ALLOWED_HOSTS="127.0.0.1,localhost")
        if PRODUCTION:
            ensure_database(os.environ["DATABASE_URL"])
        setup_django()
        from django.test import Client

        from chat.models import Conversation
        from iridium.accounts.models import User
        from iridium.accounts.services import ensure_default_plans

        ensure_default_plans()
        user, _ = User.objects.get_or_create(username="bench-streams")
        plan = user.effective_plan
        plan.daily_request_limit = 10_000_000
        plan.monthly_budget_usd = 1_000_000
        plan.max_answers_in_flight = 30_000  # one person stands for hundreds of chats here
        plan.save()
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"

        (upstream_pid,) = children()
        rows, results = [], {}
        with asgi_server() as (server, port):
            uvloop.install()
            Conversation.objects.filter(user=user).delete()
            ids = [Conversation.objects.create(user=user).pk for _ in range(CPU_ANSWERS)]
            starts, finishes = asyncio.run(start_and_finish_cpu(port, cookie, ids, server.pid))
            first = starts[0]  # the first answer after the worker started
            starts, finishes = starts[5:], finishes[5:]  # the first ones warm the server up
            print(
                f"CPU per answer, {len(starts)} answers one at a time: the first start "
                f"{first:.2f} ms; start median "
                f"{median(starts):.2f} ms (p90 {percentile(starts, 0.9):.2f}), finish median "
                f"{median(finishes):.2f} ms (p90 {percentile(finishes, 0.9):.2f})"
            )
            rounds = [10] + [count for count in LEVELS for _ in range(REPEATS)]
            for number, count in enumerate(rounds):  # round 0 warms the server up, unreported
                Conversation.objects.filter(user=user).delete()
                ids = [Conversation.objects.create(user=user).pk for _ in range(count)]
                uvloop.install()
                pids = {"server": server.pid, "upstream": upstream_pid, "client": os.getpid()}
                with CpuMeter(**pids) as through:
                    iridium_delays, kb = asyncio.run(through_iridium(port, cookie, ids, server.pid))
                with CpuMeter(**pids) as straight:
                    direct = asyncio.run(straight_from_upstream(provider_url, count))
                print(f"{count} streams, cpu through iridium: {through}; straight: {straight}")
                if number == 0:
                    continue
                results.setdefault(count, []).append(
                    {
                        "added_p50": percentile(iridium_delays, 0.5) - percentile(direct, 0.5),
                        "added_p99": percentile(iridium_delays, 0.99) - percentile(direct, 0.99),
                        "sdk_p99": percentile(direct, 0.99),
                        "iridium_p99": percentile(iridium_delays, 0.99),
                        "tokens": len(iridium_delays),
                        "kb": kb,
                    }
                )
        for count, runs in results.items():
            p99s = [run["added_p99"] for run in runs]
            rows.append(
                [
                    count,
                    len(runs),
                    runs[-1]["tokens"],
                    f"{median([run['sdk_p99'] for run in runs]):.2f}",
                    f"{median([run['iridium_p99'] for run in runs]):.2f}",
                    f"{median([run['added_p50'] for run in runs]):.2f}",
                    f"{median(p99s):.2f}",
                    f"{max(p99s):.2f}",
                    f"{median([run['kb'] for run in runs]):.0f}",
                ]
            )
        Conversation.objects.filter(user=user).delete()

    print_table(
        f"bench.streams ({SETUP} set-up): one uvicorn worker, tokens every "
        f"{TOKEN_INTERVAL * 1000:.0f} ms, {REPEATS} runs a level, {machine()}",
        rows,
        ["streams", "runs", "tokens", "sdk p99", "iridium p99", "added p50", "added p99 median",
         "added p99 worst", "kb/stream"],
    )  # fmt: skip

    def added(count, pick):
        return pick([run["added_p99"] for run in results[count]])

    under = [count for count in results if added(count, median) < TARGET_MS]
    largest = max(LEVELS)
    print(
        f"max_streams_under_20ms={max(under) if under else 0} "
        f"added_p99_ms_at_{largest}={added(largest, median):.2f} "
        f"kb_per_stream={median([run['kb'] for run in results[largest]]):.1f} "
        f"added_p99_ms_at_{largest}_median={added(largest, median):.2f} "
        f"added_p99_ms_at_{largest}_worst={added(largest, max):.2f} "
        f"start_cpu_ms={median(starts):.2f} finish_cpu_ms={median(finishes):.2f} setup={SETUP}"
    )


if __name__ == "__main__":
    main()
