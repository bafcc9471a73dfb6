"""Signs of life of this worker's work in progress, written whether or not that work shows any.

Rows that stand for work in progress (an AI call in flight, an answer being written) are taken
for dead, and completed by any worker, once they have not been touched for a while: their own
worker stopped. Work can be alive and quiet, though (a model thinking before its first token, a
tool call's arguments streaming, a call that is not streamed), so its rows are not touched by
its progress but by this heartbeat: every interval, one write for all of them, whatever they
are doing.

One heartbeat per event loop (a server has one). Its task runs while there is something to
beat; each beat is one transaction, with one UPDATE per kind of row, in a thread of its own that
keeps its database connection (iridium.infra.db). It is off every answer's path (nothing waits
for it), and nothing holds it up either: not the socket and request work queued for asgiref's
thread for synchronous work, which a busy worker keeps busy.
"""

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from .db import on_kept_connection
from .loops import PerLoop

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Kind:
    """A kind of row that says it is alive: `write(states)` touches the rows `states` names
    (keys to what each says of itself now) in one UPDATE, in the beat's transaction; the rows
    are beaten every `interval()` seconds."""

    name: str
    write: Callable[[dict[Hashable, Any]], None]
    interval: Callable[[], float]


class Heartbeat:
    def __init__(self):
        self.alive: dict[Kind, dict[Hashable, Callable[[], Any]]] = {}
        self.task: asyncio.Task | None = None
        self.sleeping: asyncio.Task | None = None  # the task, while it waits for its next beat
        self.due = 0.0  # when the next beat is (the loop's time)
        self.sooner = asyncio.Event()  # a kind of row came that is beaten sooner

    def add(self, kind: Kind, key: Hashable, state: Callable[[], Any] = lambda: None) -> None:
        """Beat the row `key` of `kind` from now on; `state()` says what it has done so far."""
        new_kind = kind not in self.alive
        self.alive.setdefault(kind, {})[key] = state
        if self.task is None or self.task.done() or self.task.cancelling():
            # In a context of its own, not the caller's (a request's, a call's).
            self.task = asyncio.create_task(
                self._run(), name="heartbeat", context=contextvars.Context()
            )
        elif new_kind and asyncio.get_running_loop().time() + kind.interval() < self.due:
            self.sooner.set()

    def remove(self, kind: Kind, key: Hashable) -> None:
        rows = self.alive.get(kind)
        if rows is not None:
            rows.pop(key, None)
            if not rows:
                del self.alive[kind]
        if not self.alive and self.task is not None and self.sleeping is self.task:
            self.task.cancel()  # nothing left to beat: the task ends now, not after its sleep

    def _interval(self) -> float:
        return min(kind.interval() for kind in self.alive)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        self.sooner.clear()
        self.due = loop.time() + self._interval()
        while self.alive:
            self.sleeping = me
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.sooner.wait(), max(self.due - loop.time(), 0))
            finally:
                if self.sleeping is me:
                    self.sleeping = None
            if self.sooner.is_set():
                self.sooner.clear()
                if self.alive:
                    self.due = min(self.due, loop.time() + self._interval())
                continue
            states = {
                kind: {key: state() for key, state in rows.items()}
                for kind, rows in self.alive.items()
            }
            if not states:
                return
            try:
                await loop.run_in_executor(_thread, on_kept_connection, _write, states)
            except Exception as error:  # the next beat tries again
                counts = ", ".join(f"{len(rows)} {kind.name}" for kind, rows in states.items())
                logger.warning("could not note %s as alive: %r", counts, error)
            if self.alive:
                self.due = loop.time() + self._interval()


def _write(states: dict[Kind, dict]) -> None:
    with transaction.atomic():
        for kind, rows in states.items():
            kind.write(rows)


_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iridium-heartbeat")
_heartbeats = PerLoop(Heartbeat)


def close_heartbeat_connection() -> None:
    """Close the heartbeat's database connection (a test database is about to go)."""
    _thread.submit(connections.close_all).result()


def heartbeat() -> Heartbeat:
    """The running event loop's heartbeat."""
    return _heartbeats.get()
