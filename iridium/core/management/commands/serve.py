"""Serve Iridium with uvicorn: HTTP and websockets from one process, for `make run`."""

import asyncio
import os

import uvicorn
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the ASGI application (HTTP and websockets) and print its URL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host, port, **options):
        asyncio.run(self._serve(host, port))

    async def _serve(self, host, port):
        config = uvicorn.Config(
            "iridium.asgi:application", host=host, port=port, lifespan="off", log_level="info"
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            self.stdout.write(
                self.style.SUCCESS(f"Iridium is running at http://{shown_host}:{port}/")
            )
        await serving
