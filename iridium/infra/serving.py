"""Run uvicorn servers inside an existing event loop and know when they listen; tune the
garbage collector of a long-lived server process."""

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys

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


def dump_tasks_on_signal(signal_number: int = signal.SIGUSR1) -> None:
    """`kill -USR1 <pid>` prints every task of the running loop with its stack to stderr: what
    a worker that will not stop, or not answer, is waiting for."""
    loop = asyncio.get_running_loop()

    def dump():
        tasks = asyncio.all_tasks(loop)
        print(f"--- {len(tasks)} task(s) of process {os.getpid()} ---", file=sys.stderr)
        for task in tasks:
            print(f"{task!r}", file=sys.stderr)
            for where in awaiting(task.get_coro()):
                print(f"    {where}", file=sys.stderr)
        sys.stderr.flush()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal_number, dump)


def awaiting(awaitable) -> list[str]:
    """Where a suspended coroutine waits: each frame of its await chain, outermost first."""
    found = []
    while awaitable is not None and len(found) < 50:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        frame = frame or getattr(awaitable, "ag_frame", None)
        if frame is not None:
            found.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    return found


class QueryStringsOut(logging.Filter):
    """Drops the query string from uvicorn's access-log lines: search terms are what people
    typed, and an access log is no place for them. (uvicorn logs the request as
    `client - "METHOD path?query HTTP/x" status`, the path with its query third.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, _, _ = args[2].partition("?")
            record.args = (*args[:2], path, *args[3:])
        return True
