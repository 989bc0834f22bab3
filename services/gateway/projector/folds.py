"""Topics folded by their own domain's projection (triage, audit, ...), beside the core ones.

`plan` decodes a record of such a topic with its fold's `decode` (no I/O) and keeps the result in
`Plan.folded`; `write_chunk` hands each topic's list to the fold's `write`, inside the chunk's
transaction, before the positions. A new domain adds one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import topics
from services.gateway.audit.projection import decode_audit, write_audit
from services.gateway.notifications.projection import decode_notification, write_notifications
from services.gateway.review.projection import decode_review, write_reviews
from services.gateway.review.scores import decode_model, decode_scored, write_models, write_scored
from services.gateway.triage.projection import decode_triage, write_triage


@dataclass(frozen=True, slots=True)
class Fold:
    """How one topic reaches its read models."""

    decode: Callable[[int, int, bytes], Any]
    """(partition, offset, value) to a decoded item; raises on an undecodable record."""
    write: Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]
    event_type: Callable[[Any], str]


FOLDS: Mapping[str, Fold] = {
    topics.TRIAGE.name: Fold(decode_triage, write_triage, lambda item: str(item.event.event_type)),
    topics.AUDIT.name: Fold(
        lambda _partition, _offset, value: decode_audit(value),
        write_audit,
        lambda event: str(event.event_type),
    ),
    topics.LOANS_SCORED.name: Fold(decode_scored, write_scored, lambda _batch: "loans.scored"),
    topics.MODELS.name: Fold(decode_model, write_models, lambda card: str(card.event_type)),
    # After the scores: a case opened in the same chunk as its loan's score sees it.
    topics.REVIEWS.name: Fold(
        decode_review, write_reviews, lambda item: str(item.event.event_type)
    ),
    topics.NOTIFICATIONS.name: Fold(
        decode_notification, write_notifications, lambda item: str(item.event.event_type)
    ),
}


async def write_folds(conn: asyncpg.Connection, folded: Mapping[str, list[Any]]) -> None:
    """Write every fold's items of one chunk, in registry order."""
    for topic, fold in FOLDS.items():
        items = folded.get(topic)
        if items:
            await fold.write(conn, items)
