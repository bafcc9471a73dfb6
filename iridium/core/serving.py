"""Run uvicorn servers inside an existing event loop and know when they listen."""

import asyncio

import uvicorn


async def start(config: uvicorn.Config) -> tuple[uvicorn.Server, asyncio.Task]:
    """Start serving `config`; return once the server listens (or has failed to start)."""
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if not server.started:
        await serving  # re-raises why it could not start
        raise SystemExit(f"could not serve on {config.host}:{config.port}")
    return server, serving
