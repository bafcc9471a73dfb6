"""Serve Iridium with uvicorn: HTTP and websockets from one process, for `make run`.

Without OPENAI_API_KEY (and OPENAI_BASE_URL) the demo AI provider is served beside it, in the
same event loop, on DEMO_PROVIDER_PORT. A background worker (`manage.py worker`: periodic alerts,
roll-ups, retention) runs beside it as a process of its own, unless `--no-worker`.
"""

import asyncio
import contextlib
import os
import subprocess
import sys

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from iridium.demo_provider import DemoProvider
from iridium.infra.serving import start

DEMO_TOKEN_DELAY = 0.02  # seconds between streamed words, so streaming is visible


class Command(BaseCommand):
    help = "Serve the ASGI application (HTTP and websockets) and print its URL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--no-worker", action="store_false", dest="worker", help="Start no background worker."
        )

    def handle(self, *args, host, port, worker=True, **options):
        process = None
        if worker:
            command = [sys.executable, "-m", "django", "worker", "--verbosity", "0", "--no-reload"]
            environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "iridium.settings"}
            process = subprocess.Popen(command, env=environment)
            self.stdout.write("Background worker started (alerts, roll-ups, retention)")
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(self._serve(host, port))
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()

    async def _serve(self, host, port):
        tasks = []
        if settings.AI_USES_DEMO_PROVIDER:
            demo_config = uvicorn.Config(
                DemoProvider(token_delay=DEMO_TOKEN_DELAY),
                host="127.0.0.1",
                port=settings.DEMO_PROVIDER_PORT,
                log_level="warning",
                lifespan="off",  # it has nothing to start or stop
                timeout_graceful_shutdown=1,
            )
            _, demo = await start(demo_config)
            tasks.append(demo)
            self.stdout.write(f"Demo AI provider at {settings.AI_BASE_URL} (no OPENAI_API_KEY set)")
        config = uvicorn.Config(
            "iridium.asgi:application",
            host=host,
            port=port,
            # Answers in flight finish (or are stopped and saved) when the server stops, and
            # queued records are written: iridium.web.lifespan.
            lifespan="on",
            log_level="info",
            # Tokens are a few bytes: compressing each websocket frame costs more than it saves.
            ws_per_message_deflate=False,
        )
        _, app = await start(config)
        tasks.append(app)
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.stdout.write(self.style.SUCCESS(f"Iridium is running at http://{shown_host}:{port}/"))
        # When either server stops (Ctrl+C stops both), stop.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
