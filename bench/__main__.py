"""`python -m bench`: every benchmark, one after another, each in a process of its own;
bench.streams twice, on the embedded set-up (SQLite, the in-memory layer) and on the production
one (PostgreSQL through the pool and channels-redis: BENCH_DATABASE_URL, BENCH_REDIS_URL)."""

import os
import subprocess
import sys

EMBEDDED = {"DATABASE_URL": None, "REDIS_URL": None}
PRODUCTION = {
    "DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/iridium_bench"
    ),
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
}
RUNS = [
    ("overhead", {}),
    ("streams", EMBEDDED),
    ("streams", PRODUCTION),
    ("dashboards", {}),
    ("pages", {}),
]


def environment(changes: dict) -> dict:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


if __name__ == "__main__":
    failed = 0
    for name, changes in RUNS:
        print(f"== bench.{name}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", f"bench.{name}"], env=environment(changes))
    sys.exit(failed)
