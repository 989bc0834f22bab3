"""Fold loans.scored.v1 into `loan_scores` and models.v1 into `model_cards` (SPEC §8).

Both are idempotent: a loan's row is keyed by its run and tape position, a card by model name and
version, and a redelivered batch or card writes the same values again.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from contracts.codec import decode
from contracts.scoring import Factor, ModelLoaded, ScoredBatch
from services.gateway.tables import SCHEMA

SCORE_COLUMNS = (
    "run_id",
    "seq",
    "loan_id",
    "batch_seq",
    "seller_loan_number",
    "disposition",
    "model_version",
    "score",
    "probability_default",
    "risk_category",
    "routing_decision",
    "routing_reason",
    "routing_triggers",
    "policy_version",
    "positive_factors",
    "negative_factors",
    "features",
    "scored_at",
)
AUTO_DECIDED = frozenset({"auto_approve", "auto_decline"})
JSON_COLUMNS = frozenset({"positive_factors", "negative_factors", "features"})


def decode_scored(_partition: int, _offset: int, value: bytes) -> ScoredBatch:
    """One loans.scored.v1 batch, validated against its contract."""
    return decode(value, ScoredBatch)


def decode_model(_partition: int, _offset: int, value: bytes) -> ModelLoaded:
    """One models.v1 card, validated."""
    return decode(value, ModelLoaded)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _factors(factors: tuple[Factor, ...]) -> str:
    return _json([factor.model_dump(mode="json") for factor in factors])


def _rows(batch: ScoredBatch) -> list[tuple[Any, ...]]:
    return [
        (
            batch.run_id,
            event.seq,
            event.loan_id,
            batch.batch_seq,
            event.seller_loan_number,
            event.disposition,
            event.model_version,
            event.score,
            event.probability_default,
            event.risk_category,
            event.routing.decision,
            event.routing.reason,
            list(event.routing.triggers),
            event.routing.policy_version,
            _factors(event.positive_factors),
            _factors(event.negative_factors),
            _json(event.features.model_dump(mode="json")),
            event.occurred_at,
        )
        for event in batch.events
    ]


async def write_scored(conn: asyncpg.Connection, batches: list[ScoredBatch]) -> None:
    """Upsert a chunk's scored loans (inside the chunk's transaction)."""
    await _write_batches(conn, batches)
    rows = [row for batch in batches for row in _rows(batch)]
    if not rows:
        return
    names = ", ".join(f'"{name}"' for name in SCORE_COLUMNS)
    slots = ", ".join(
        f"${i}::jsonb" if name in JSON_COLUMNS else f"${i}"
        for i, name in enumerate(SCORE_COLUMNS, 1)
    )
    updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in SCORE_COLUMNS[2:])
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.loan_scores ({names}) VALUES ({slots}) "
        f"ON CONFLICT (run_id, seq) DO UPDATE SET {updates}",
        rows,
    )


async def _write_batches(conn: asyncpg.Connection, batches: list[ScoredBatch]) -> None:
    rows = [
        (
            batch.run_id,
            batch.batch_seq,
            len(batch.events),
            sum(1 for event in batch.events if event.routing.decision in AUTO_DECIDED),
            min(event.seq for event in batch.events),
            max(event.seq for event in batch.events),
        )
        for batch in batches
        if batch.events
    ]
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.scored_batches "
        "(run_id, batch_seq, loans, auto_routed, first_seq, last_seq) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, batch_seq) DO UPDATE SET "
        "loans = EXCLUDED.loans, auto_routed = EXCLUDED.auto_routed, "
        "first_seq = EXCLUDED.first_seq, last_seq = EXCLUDED.last_seq",
        rows,
    )


async def write_models(conn: asyncpg.Connection, cards: list[ModelLoaded]) -> None:
    """Upsert a chunk's model cards."""
    if not cards:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.model_cards (model_name, model_version, card, loaded_at) "
        "VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (model_name, model_version) "
        "DO UPDATE SET card = EXCLUDED.card, loaded_at = EXCLUDED.loaded_at",
        [
            (
                card.model_name,
                card.model_version,
                _json(card.model_dump(mode="json")),
                card.occurred_at,
            )
            for card in cards
        ],
    )
