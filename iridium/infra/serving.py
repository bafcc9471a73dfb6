"""Run uvicorn servers inside an existing event loop and know when they listen; tune the
garbage collector of a long-lived server process."""

import asyncio
import gc

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


def settle_garbage_collector() -> None:
    """Call once the application is loaded: what is loaded by then lives as long as the process.

    Each open stream holds some 400 objects (its socket's consumer, the answer's task, the
    upstream response), which live for the seconds the answer takes; with CPython's default
    thresholds (700, 10, 10) the collector walked them again and again while hundreds of streams
    opened, pausing every stream for up to 0.2 s at a time at 500 streams. So:

    - what is loaded is taken out of the collector's reach (`gc.freeze`): a full collection
      walks only what requests create;
    - the youngest generation is collected every 5,000 net allocations (not 700), the middle one
      every third time (not eleventh), so survivors reach the old generation after a few short
      pauses (about 5 ms each at 500 streams) instead of piling up in the middle one;
    - a full collection is considered after 100 middle ones (some 1.5 million net allocations)
      and, as always, made only when the old generation has grown by a quarter since the last.

    Garbage cycles are still collected young, where they are made.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 2, 100)
