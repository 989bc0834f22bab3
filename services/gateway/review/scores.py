"""Fold loans.scored.v1 into `loan_scores` and models.v1 into `model_cards` (SPEC §8).

Both are idempotent: a loan's row is keyed by its run and tape position, a card by model name and
version, and a redelivered batch or card writes the same values again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import orjson

from contracts import wire
from contracts.codec import decode
from contracts.scoring import ModelLoaded
from services.gateway.projector.copying import copy_or_upsert
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
BATCH_COLUMNS = ("run_id", "batch_seq", "loans", "auto_routed", "first_seq", "last_seq")
AUTO_DECIDED = frozenset({"auto_approve", "auto_decline"})
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """One scored batch as `loan_scores` rows (SCORE_COLUMNS order) and its `scored_batches` row."""

    rows: list[tuple[Any, ...]]
    batch: tuple[Any, ...] | None
    """(run_id, batch_seq, loans, auto_routed, first_seq, last_seq); None for an empty batch."""


def decode_scored(_partition: int, _offset: int, value: bytes) -> ScoredRows:
    """One loans.scored.v1 batch, validated by its wire type, straight to rows.

    The factors and features are re-encoded by msgspec from the validated Structs: JSONB stores
    them by value, so the read model holds exactly what a sorted-key encoding would.
    """
    batch = decode(value, wire.ScoredBatch)
    run_id, batch_seq = batch.run_id, batch.batch_seq
    rows = [
        (
            run_id,
            event.seq,
            event.loan_id,
            batch_seq,
            event.seller_loan_number,
            event.disposition,
            event.model_version,
            event.score,
            event.probability_default,
            event.risk_category,
            event.routing.decision,
            event.routing.reason,
            event.routing.triggers,
            event.routing.policy_version,
            _encode(event.positive_factors).decode(),
            _encode(event.negative_factors).decode(),
            _encode(event.features).decode(),
            event.occurred_at,
        )
        for event in batch.events
    ]
    if not rows:
        return ScoredRows(rows, None)
    seqs = [row[1] for row in rows]
    auto = sum(1 for row in rows if row[10] in AUTO_DECIDED)
    return ScoredRows(rows, (run_id, batch_seq, len(rows), auto, min(seqs), max(seqs)))


def decode_model(_partition: int, _offset: int, value: bytes) -> ModelLoaded:
    """One models.v1 card, validated."""
    return decode(value, ModelLoaded)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


async def write_scored(conn: asyncpg.Connection, batches: list[ScoredRows]) -> None:
    """COPY a chunk's scored loans and batches in (inside the chunk's transaction).

    A redelivered batch or a loan scored again finds its row and is upserted instead, with the
    values it carries now.
    """
    await copy_or_upsert(
        conn,
        "scored_batches",
        BATCH_COLUMNS,
        ("run_id", "batch_seq"),
        [batch.batch for batch in batches if batch.batch is not None],
    )
    await copy_or_upsert(
        conn,
        "loan_scores",
        SCORE_COLUMNS,
        ("run_id", "seq"),
        [row for batch in batches for row in batch.rows],
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
