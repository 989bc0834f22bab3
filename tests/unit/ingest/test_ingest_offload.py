"""Blocking tape work in a worker thread: chunks in order, errors raised, stopping abandons."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing

import pytest

from services.ingest.offload import Interrupted, Offload


async def collect(offload: Offload, items: Iterator[int], size: int) -> list[list[int]]:
    async with aclosing(offload.chunks(lambda: items, size)) as chunks:
        return [chunk async for chunk in chunks]


async def test_items_arrive_in_order_in_chunks_of_the_given_size() -> None:
    assert await collect(Offload(), iter(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]


async def test_the_work_runs_off_the_event_loop_thread() -> None:
    loop_thread = threading.get_ident()

    assert await Offload().call(threading.get_ident) != loop_thread


async def test_an_error_in_the_worker_is_raised_on_the_loop() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken row")

    with pytest.raises(ValueError, match="broken row"):
        await collect(Offload(), failing(), 1)


async def test_the_iterator_is_closed_in_the_worker_when_the_consumer_leaves_early() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    offload = Offload(depth=1)
    async with aclosing(offload.chunks(endless, 2)) as chunks:
        async for chunk in chunks:
            assert chunk == [1, 2]
            break

    assert await asyncio.to_thread(closed.wait, 5)


async def test_stopping_abandons_a_long_read_at_once() -> None:
    offload = Offload(depth=1)

    def slow() -> Iterator[int]:
        while True:
            time.sleep(0.01)
            yield 1

    with pytest.raises(Interrupted):
        async with aclosing(offload.chunks(slow, 1)) as chunks:
            async for _ in chunks:
                offload.stop()

    with pytest.raises(Interrupted):
        await offload.call(lambda: 1)
