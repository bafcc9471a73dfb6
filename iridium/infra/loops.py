"""One object per event loop, for what holds futures, tasks or connections (none of which can
cross loops: a server has one loop, tests and `async_to_sync` make many)."""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, loop: asyncio.AbstractEventLoop | None = None) -> T:
        """The running loop's object (`loop`'s, when the caller has it at hand), made on first
        use."""
        loop = loop or asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = self._factory()
        return found

    def clear(self) -> None:
        self._by_loop.clear()
