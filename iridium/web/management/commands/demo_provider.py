"""Serve Iridium's demo AI provider, an OpenAI-compatible server that needs no key."""

import asyncio
import contextlib

import uvicorn
from django.core.management.base import BaseCommand

from iridium.demo_provider import DemoProvider
from iridium.infra.serving import start


class Command(BaseCommand):
    help = "Serve the deterministic demo AI provider (OpenAI-compatible) and print its URL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--token-delay",
            type=float,
            default=0.02,
            help="Seconds before each streamed chunk, so streaming is visible.",
        )

    def handle(self, *args, host, port, token_delay, **options):
        # uvicorn re-raises Ctrl+C once it has shut down cleanly: nothing left to report.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve(host, port, token_delay))

    async def _serve(self, host, port, token_delay):
        config = uvicorn.Config(
            DemoProvider(token_delay=token_delay),
            host=host,
            port=port,
            log_level="warning",
            # A request held by [[demo:fault=timeout]] must not hold up stopping the server.
            timeout_graceful_shutdown=1,
        )
        _, serving = await start(config)
        self.stdout.write(f"Demo AI provider at http://{host}:{port}/v1")
        self.stdout.flush()
        await serving
