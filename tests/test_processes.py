"""Whole processes: `manage.py serve` as `make run` starts it, and PostHog's flush at exit."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(tmp_path, **extra):
    variables = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "POSTHOG_", "DATABASE_URL", "REDIS_URL"))
    }
    variables.update(
        DJANGO_SETTINGS_MODULE="iridium.settings",
        IRIDIUM_ENV_FILE="/nonexistent",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        **extra,
    )
    return variables


def run_manage(env, *args):
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def test_serve_starts_the_app_and_the_demo_provider(tmp_path):
    port, demo_port = free_port(), free_port()
    env = environment(tmp_path, PORT=str(port), DEMO_PROVIDER_PORT=str(demo_port))
    run_manage(env, "migrate", "--noinput")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "Iridium is running at" in line:
                break
        assert f"Iridium is running at http://127.0.0.1:{port}/" in "".join(lines)
        assert f"Demo AI provider at http://127.0.0.1:{demo_port}/v1" in "".join(lines)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200
        models = httpx.get(f"http://127.0.0.1:{demo_port}/v1/models", timeout=10)
        assert "gpt-4o-mini" in [m["id"] for m in models.json()["data"]]
    finally:
        server.terminate()
        server.wait(timeout=10)


CALL_AND_EXIT = """
import asyncio, django
django.setup()
from iridium import ai
from iridium.accounts.models import User
user = User.objects.create_user("exiting")
asyncio.run(ai.complete(ai.Request(user=user, feature="chat", trace_id="t-exit",
                                   messages=[{"role": "user", "content": "bye"}])))
print("called")
"""


def test_events_queued_at_exit_are_sent(
    tmp_path, demo_provider_server, posthog_server, fake_posthog
):
    env = environment(
        tmp_path,
        OPENAI_BASE_URL=demo_provider_server.url + "/v1",
        POSTHOG_API_KEY="phc_exit",
        POSTHOG_HOST=posthog_server.url,
    )
    run_manage(env, "migrate", "--noinput")
    result = subprocess.run(
        [sys.executable, "-c", CALL_AND_EXIT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    [event] = fake_posthog.wait_for(1, name="$ai_generation")
    assert event["properties"]["$ai_trace_id"] == "t-exit"
    assert event["api_key"] == "phc_exit"
