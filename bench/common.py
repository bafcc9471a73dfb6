"""What every benchmark needs: a configured Django, a database, and the loopback upstreams."""

import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of `url` when it does not exist."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(**environment):
    """Configure Django for a benchmark: production mode (no DEBUG query log), its own SQLite
    file unless DATABASE_URL is set, and the given settings from the environment."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iridium.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-" + "x" * 30)
    os.environ.setdefault("SQLITE_PATH", str(ROOT / "var" / "bench.sqlite3"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def upstreams(token_delay: float = 0.0):
    """Start the demo provider and a PostHog capture server in another process."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "upstreams.py"), str(token_delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = process.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("the upstream servers did not start")
        provider_port, posthog_port = int(line[1]), int(line[2])
        yield f"http://127.0.0.1:{provider_port}/v1", f"http://127.0.0.1:{posthog_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values):
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(title, rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


# The ASGI server gets a core of its own (as on its own host) and the load generator and the
# upstreams share the others, so that what is measured is the server, not their contention.
# BENCH_PIN=0 turns this off.
SERVER_CPUS = (
    {0} if os.environ.get("BENCH_PIN", "1") == "1" and (os.cpu_count() or 1) > 1 else set()
)
# BENCH_PROFILE=/tmp/server.prof runs the server under cProfile (read it with pstats);
# BENCH_APP serves another ASGI application (a wrapper of Iridium's that traces its steps);
# BENCH_WS picks uvicorn's websocket implementation (--ws; its default: auto).
APP = os.environ.get("BENCH_APP", "iridium.asgi:application")
WS = ["--ws", os.environ["BENCH_WS"]] if "BENCH_WS" in os.environ else []
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if "BENCH_PROFILE" in os.environ else []
)


def raise_file_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def keep_off_server_cores():
    """Run this process, and the processes it starts from now on, on the cores the server
    does not use."""
    raise_file_limit()
    if SERVER_CPUS:
        os.sched_setaffinity(0, set(range(os.cpu_count())) - SERVER_CPUS)


def _server_preexec():
    raise_file_limit()
    if SERVER_CPUS:
        os.sched_setaffinity(0, SERVER_CPUS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def asgi_server():
    """One uvicorn worker serving Iridium, as in production, on its own core; yields its
    process and port. It reads its settings from this process's environment."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, *PROFILE, "-m", "uvicorn", APP,
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--ws-per-message-deflate", "false", *WS],
        cwd=ROOT,
        env=os.environ.copy(),
        preexec_fn=_server_preexec,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the ASGI server did not start") from None
                time.sleep(0.1)
        yield server, port
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
