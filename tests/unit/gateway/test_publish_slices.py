"""The gateway publishes many events a slice at a time, building each slice only when it is sent:
the API serves requests on the same event loop, between the slices."""

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from contracts.topics import REVIEWS
from services.gateway.acting import PUBLISH_CONCURRENCY, publish_all


class Event(BaseModel):
    number: int


class Recording:
    """A publisher that notes how many events had been built when each one was sent."""

    def __init__(self) -> None:
        self.built = 0
        self.built_when_sent: list[int] = []

    def events(self, count: int) -> Iterator[Event]:
        for number in range(count):
            self.built += 1
            yield Event(number=number)

    async def publish(self, _topic: Any, _key: str, _event: BaseModel) -> None:
        self.built_when_sent.append(self.built)


async def test_events_are_built_and_sent_a_slice_at_a_time_never_all_at_once() -> None:
    publisher = Recording()
    count = PUBLISH_CONCURRENCY * 3 + 7
    await publish_all(publisher, REVIEWS, publisher.events(count), lambda e: str(e.number))  # type: ignore[arg-type]

    assert len(publisher.built_when_sent) == count
    slices = sorted(set(publisher.built_when_sent))
    assert slices == [PUBLISH_CONCURRENCY, 2 * PUBLISH_CONCURRENCY, 3 * PUBLISH_CONCURRENCY, count]
    assert PUBLISH_CONCURRENCY <= 100  # a slice's encoding and sends hold the loop ~10 ms


async def test_a_list_of_events_is_published_whole_in_order() -> None:
    publisher = Recording()
    sent: list[int] = []

    async def publish(_topic: Any, _key: str, event: Any) -> None:
        sent.append(event.number)

    publisher.publish = publish  # type: ignore[method-assign]
    await publish_all(publisher, REVIEWS, [Event(number=n) for n in range(250)], str)  # type: ignore[arg-type]
    assert sent == list(range(250))
