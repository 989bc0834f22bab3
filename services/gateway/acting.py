"""What every people's-action domain does around its events: publish them, then wait for the
projector to fold them so the answer can say what happened (triage, review)."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import islice
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.topics import Topic
from services.gateway.deps import Publisher

PUBLISH_CONCURRENCY = 100
POLL_SECONDS = 0.05
Outcomes = Callable[[AsyncSession, list[UUID]], Awaitable[dict[UUID, Any]]]


async def publish_all(
    publisher: Publisher,
    topic: Topic,
    events: Iterable[BaseModel],
    key: Callable[[Any], str],
) -> None:
    """Publish events under `key(event)`, a slice of PUBLISH_CONCURRENCY in flight at once (the
    producer batches them).

    The API serves requests on the same event loop: a slice is built (`events` may be a lazy
    iterable), encoded and sent without a pause, so slices are kept small enough that a request
    waits milliseconds, not the hundreds a review job's 10,000 case openings took at once.
    """
    iterator = iter(events)
    while chunk := list(islice(iterator, PUBLISH_CONCURRENCY)):
        await asyncio.gather(*(publisher.publish(topic, key(event), event) for event in chunk))


async def wait_folded(
    session: AsyncSession, event_ids: Sequence[UUID], wait_seconds: float, outcomes: Outcomes
) -> dict[UUID, Any]:
    """The fold outcomes of the events, waiting up to `wait_seconds` for all of them."""
    deadline = time.monotonic() + wait_seconds
    found: dict[UUID, Any] = {}
    missing = list(event_ids)
    while missing:
        found.update(await outcomes(session, missing))
        await session.commit()  # a fresh snapshot for the next look
        missing = [event_id for event_id in missing if event_id not in found]
        if not missing or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    return found
