"""Blocking tape work off the event loop: reading runs in a worker thread, a chunk at a time.

Reading and normalising a tape is CPU-bound Python; on the event loop it would starve the Kafka
heartbeats (the group would drop ingest and redeliver the request), the health endpoints and the
other consumer. A worker thread hands results over in chunks through a bounded hand-off, so
memory stays flat whatever the tape's length, and the loop runs between chunks (the interpreter
switches threads every few milliseconds). The threads are daemons and check a stop flag between
items: on shutdown ingest abandons a tape within moments instead of reading it to its end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any, TypeVar

from services.ingest.errors import IngestError

T = TypeVar("T")
HANDOFF_CHUNKS = 4
POLL_SECONDS = 0.1
JOIN_SECONDS = 5.0


class Interrupted(IngestError):
    """Ingest is shutting down: the tape in hand was abandoned and its request stays unanswered."""


class _Done:
    """The end of a worker's results."""


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Offload:
    """Runs blocking iterators and calls in daemon threads; `stop` abandons every one of them."""

    def __init__(self, depth: int = HANDOFF_CHUNKS) -> None:
        self.depth = depth
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        """Whether ingest is shutting down (asked by blocking code between steps)."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Abandon every tape being read; later reads fail with Interrupted at once."""
        self._stopping.set()

    async def call(self, function: Callable[[], T]) -> T:
        """`function()` in a worker thread; Interrupted if ingest stops before it returns."""
        async with aclosing(self.chunks(lambda: iter((function(),)), 1)) as chunks:
            async for chunk in chunks:
                return chunk[0]
        raise Interrupted("ingest is shutting down")

    async def chunks(self, make: Callable[[], Iterator[T]], size: int) -> AsyncIterator[list[T]]:
        """The items of `make()`, produced in a worker thread, in lists of up to `size`.

        `make` is called in the thread, so files it opens belong to it; the iterator is closed
        there too, on the way out, whether it ended, failed or was abandoned. Iterate inside
        `contextlib.aclosing`, so leaving early (an error) releases the worker at once.
        """
        self._raise_if_stopping()
        loop = asyncio.get_running_loop()
        results: asyncio.Queue[list[T] | _Done | _Failed] = asyncio.Queue()
        slots = threading.Semaphore(self.depth)
        abandoned = threading.Event()

        def hand_over(item: list[T] | _Done | _Failed) -> bool:
            while not slots.acquire(timeout=POLL_SECONDS):
                if abandoned.is_set() or self.stopping:
                    return False
            try:
                loop.call_soon_threadsafe(results.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return False
            return True

        def work() -> None:
            try:
                iterator = make()
                try:
                    chunk: list[T] = []
                    for item in iterator:
                        if abandoned.is_set() or self.stopping:
                            return
                        chunk.append(item)
                        if len(chunk) >= size:
                            if not hand_over(chunk):
                                return
                            chunk = []
                    if chunk and not hand_over(chunk):
                        return
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
                hand_over(_Done())
            except BaseException as error:  # handed to the loop, raised there
                hand_over(_Failed(error))

        thread = threading.Thread(target=work, name="ingest-reader", daemon=True)
        thread.start()
        try:
            while True:
                item = await self._next(results)
                slots.release()
                if isinstance(item, _Done):
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            abandoned.set()
            # The worker may be mid-row in objects the caller is about to close (the duplicate
            # index): wait for it to let go; it checks between rows, so this is quick.
            await asyncio.to_thread(thread.join, JOIN_SECONDS)

    async def _next(self, results: asyncio.Queue[Any]) -> Any:
        """The next hand-off, or Interrupted once ingest stops (checked every few polls)."""
        while True:
            self._raise_if_stopping()
            try:
                return await asyncio.wait_for(results.get(), POLL_SECONDS * 5)
            except TimeoutError:
                continue

    def _raise_if_stopping(self) -> None:
        if self.stopping:
            raise Interrupted("ingest is shutting down: the tape will be read again on restart")
