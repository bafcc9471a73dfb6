"""What every benchmark needs: a configured Django, a database, and the loopback upstreams."""

import os
import platform
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
