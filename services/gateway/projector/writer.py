"""Write one planned chunk to PostgreSQL in one transaction, together with the positions read.

Exactly-once effect: the rows and the consumer positions commit together, and the transaction
first checks the projector generation, so a rebuild that started meanwhile voids the chunk.
Loan batches are idempotent per `(run_id, stage, batch_seq)`: a batch seen before is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.ids import tape_run_id
from services.gateway.projector.batches import (
    EXCEPTION_COLUMNS,
    LOAN_COLUMNS,
    DispositionedRows,
)
from services.gateway.projector.copying import copy_or_upsert
from services.gateway.projector.folds import write_folds
from services.gateway.projector.hooks import hooks
from services.gateway.projector.plan import BatchSeen, Plan, TapeSeen
from services.gateway.runs.domain import (
    RUN_FIELDS,
    RunState,
    apply,
    run_order,
    state_from_mapping,
    state_to_row,
)
from services.gateway.tables import SCHEMA

RUN_COLUMNS = RUN_FIELDS
STATS_COLUMNS = (
    "run_id",
    "batch_seq",
    "loans",
    "to_purchase",
    "projected",
    "rejected",
    "exceptions",
    "present_fields",
    "validity_420",
    "unique_loans",
    "rules_passed",
    "dq_score",
)

Positions = Mapping[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows built afresh on each pass (COPY, and its upsert fallback) and freed as they are sent."""

    make: Callable[[], Iterator[tuple[Any, ...]]]
    count: int

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self.make()

    def __len__(self) -> int:
        return self.count


class GenerationChanged(Exception):
    """A rebuild reset the read models while this chunk was being read: read again."""


def _columns(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


async def current_generation(conn: asyncpg.Connection, *, lock: bool = False) -> int:
    """The projector generation; `lock` holds it (shared) until the transaction ends."""
    suffix = " FOR SHARE" if lock else ""
    value = await conn.fetchval(
        f"SELECT generation FROM {SCHEMA}.projector_state WHERE id = 1{suffix}"
    )
    return int(value or 0)


async def replaying(conn: asyncpg.Connection) -> bool:
    """Whether the read models are being replayed from the log (a rebuild not yet caught up)."""
    return bool(await conn.fetchval(f"SELECT replaying FROM {SCHEMA}.projector_state WHERE id = 1"))


async def mark_replaying(conn: asyncpg.Connection, generation: int, value: bool) -> None:
    """Say the read models of `generation` are (or are no longer) being replayed."""
    await conn.execute(
        f"UPDATE {SCHEMA}.projector_state SET replaying = $2 WHERE id = 1 AND generation = $1",
        generation,
        value,
    )


async def read_positions(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    """Stored positions: (physical topic, partition) to the next offset to read."""
    rows = await conn.fetch(
        f"SELECT topic, partition, next_offset FROM {SCHEMA}.projector_positions"
    )
    return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}


async def write_chunk(
    conn: asyncpg.Connection, chunk: Plan, positions: Positions, generation: int
) -> None:
    """Apply a chunk and advance the positions atomically; GenerationChanged if voided."""
    async with conn.transaction():
        if await current_generation(conn, lock=True) != generation:
            raise GenerationChanged()
        created = await _write_runs(conn, chunk.run_events)
        await _write_reports(conn, chunk.reports)
        fresh = await _write_batches(conn, chunk.batches)
        orders = await _run_orders(conn, {rows.run_id for rows in chunk.dispositioned})
        new_rows: dict[tuple[UUID, str, int], DispositionedRows] = {}
        for rows in chunk.dispositioned:
            key = (UUID(rows.run_id), "dispositioned", rows.batch_seq)
            if key in fresh:
                new_rows.setdefault(key, rows)
        await _write_dispositioned(conn, list(new_rows.values()), orders)
        await _reorder_exceptions(conn, created)
        await _write_tapes(conn, chunk.tapes.values())
        await _write_dead_letters(conn, chunk.dead_letters)
        await write_folds(conn, chunk.folded)
        for hook in hooks():
            if rows := chunk.hooked.get(hook.name):
                await hook.write(conn, rows)
        await _write_positions(conn, positions)


async def _write_runs(conn: asyncpg.Connection, events: list[Any]) -> dict[UUID, datetime]:
    """Fold run events into the runs table; return runs whose creation time changed."""
    if not events:
        return {}
    run_ids = list(dict.fromkeys(event.run_id for event in events))
    existing = await conn.fetch(
        f"SELECT {_columns(RUN_COLUMNS)} FROM {SCHEMA}.runs WHERE run_id = ANY($1::uuid[])",
        run_ids,
    )
    states = {row["run_id"]: state_from_mapping(row) for row in existing}
    before = {run_id: state.created_at for run_id, state in states.items()}
    for event in events:
        state = states.get(event.run_id) or RunState(run_id=event.run_id)
        states[event.run_id] = apply(event, state)
    updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in RUN_COLUMNS[1:])
    placeholders = ", ".join(f"${i}" for i in range(1, len(RUN_COLUMNS) + 1))
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.runs ({_columns(RUN_COLUMNS)}) VALUES ({placeholders}) "
        f"ON CONFLICT (run_id) DO UPDATE SET {updates}",
        [state_to_row(states[run_id]) for run_id in run_ids],
    )
    return {
        run_id: states[run_id].created_at
        for run_id in run_ids
        if states[run_id].created_at is not None and states[run_id].created_at != before.get(run_id)
    }


async def _write_reports(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.report_files "
        "(run_id, key, storage_key, uri, sha256, size, rows, written_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, key) DO UPDATE SET "
        "storage_key = EXCLUDED.storage_key, uri = EXCLUDED.uri, sha256 = EXCLUDED.sha256, "
        "size = EXCLUDED.size, rows = EXCLUDED.rows, written_at = EXCLUDED.written_at",
        rows,
    )


async def _write_batches(
    conn: asyncpg.Connection, batches: list[BatchSeen]
) -> set[tuple[UUID, str, int]]:
    """Record batches not seen before; return the keys that are new."""
    unique: dict[tuple[UUID, str, int], BatchSeen] = {}
    for batch in batches:
        unique.setdefault((batch.run_id, batch.stage, batch.batch_seq), batch)
    if not unique:
        return set()
    values = list(unique.values())
    inserted = await conn.fetch(
        f"INSERT INTO {SCHEMA}.run_batches (run_id, stage, batch_seq, loan_count, recorded_at) "
        "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::timestamptz[]) "
        "ON CONFLICT DO NOTHING RETURNING run_id, stage, batch_seq",
        [b.run_id for b in values],
        [b.stage for b in values],
        [b.batch_seq for b in values],
        [b.loan_count for b in values],
        [b.recorded_at for b in values],
    )
    return {(row["run_id"], row["stage"], row["batch_seq"]) for row in inserted}


async def _run_orders(
    conn: asyncpg.Connection, run_ids: set[str]
) -> dict[str, tuple[datetime, int]]:
    if not run_ids:
        return {}
    rows = await conn.fetch(
        f"SELECT run_id, created_at FROM {SCHEMA}.runs "
        "WHERE run_id = ANY($1::uuid[]) AND created_at IS NOT NULL",
        list(run_ids),
    )
    return {str(row["run_id"]): (row["created_at"], run_order(row["created_at"])) for row in rows}


async def _write_dispositioned(
    conn: asyncpg.Connection,
    batches: list[DispositionedRows],
    orders: Mapping[str, tuple[datetime, int]],
) -> None:
    if not batches:
        return
    loans = _Rows(
        lambda: (row for rows in batches for row in rows.loans()),
        sum(rows.stats["loans"] for rows in batches),
    )

    def exception_rows() -> Iterator[tuple[Any, ...]]:
        for rows in batches:
            created_at, order = orders.get(rows.run_id, (None, None))
            for row in rows.exceptions():
                yield (*row, created_at, order)

    exceptions = _Rows(exception_rows, sum(rows.stats["exceptions"] for rows in batches))
    await copy_or_upsert(conn, "loan_facts", LOAN_COLUMNS, ("run_id", "seq"), loans)
    await copy_or_upsert(
        conn,
        "loan_exceptions",
        (*EXCEPTION_COLUMNS, "created_at", "run_order"),
        ("run_id", "seq", "ordinal"),
        exceptions,
    )
    await conn.copy_records_to_table(
        "batch_stats",
        schema_name=SCHEMA,
        columns=STATS_COLUMNS,
        records=[
            (rows.run_id, rows.batch_seq, *(rows.stats[name] for name in STATS_COLUMNS[2:]))
            for rows in batches
        ],
    )
    counts = [
        (rows.run_id, rows.batch_seq, kind, severity, count)
        for rows in batches
        for (kind, severity), count in rows.exception_counts.items()
    ]
    if counts:
        await conn.copy_records_to_table(
            "batch_exception_counts",
            schema_name=SCHEMA,
            columns=["run_id", "batch_seq", "exception_type", "severity", "count"],
            records=counts,
        )


async def _reorder_exceptions(conn: asyncpg.Connection, created: Mapping[UUID, datetime]) -> None:
    """Give exceptions projected before their run's creation time was known that time."""
    for run_id, created_at in created.items():
        order = run_order(created_at)
        await conn.execute(
            f"UPDATE {SCHEMA}.loan_exceptions SET created_at = $2, run_order = $3 "
            "WHERE run_id = $1 AND run_order IS DISTINCT FROM $3",
            run_id,
            created_at,
            order,
        )


async def _write_tapes(conn: asyncpg.Connection, tapes: Iterable[TapeSeen]) -> None:
    rows = [
        (
            tape.tape_id,
            tape_run_id(tape.tape_id),
            tape.max_row,
            tape.expected_rows,
            date.fromisoformat(tape.pdate) if tape.pdate else None,
            str(tape.irr_target) if tape.irr_target is not None else None,
            tape.sales_team_id,
        )
        for tape in tapes
    ]
    if not rows:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.tapes "
        "(tape_id, run_id, max_row, expected_rows, pdate, irr_target, sales_team_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tape_id) DO UPDATE SET "
        "max_row = GREATEST(tapes.max_row, EXCLUDED.max_row), "
        "expected_rows = COALESCE(EXCLUDED.expected_rows, tapes.expected_rows), "
        "pdate = COALESCE(EXCLUDED.pdate, tapes.pdate), "
        "irr_target = COALESCE(EXCLUDED.irr_target, tapes.irr_target), "
        "sales_team_id = CASE WHEN EXCLUDED.expected_rows IS NULL "
        "THEN tapes.sales_team_id ELSE EXCLUDED.sales_team_id END",
        rows,
    )


async def _write_dead_letters(conn: asyncpg.Connection, letters: list[Any]) -> None:
    if not letters:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.dead_letters "
        '(event_id, service, reason, topic, partition, "offset", key, payload, occurred_at) '
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO UPDATE SET "
        "service = EXCLUDED.service, reason = EXCLUDED.reason, occurred_at = EXCLUDED.occurred_at",
        [
            (
                letter.event_id,
                letter.service,
                letter.reason,
                letter.topic,
                letter.partition,
                letter.offset,
                letter.key,
                letter.payload,
                letter.occurred_at,
            )
            for letter in letters
        ],
    )


async def _write_positions(conn: asyncpg.Connection, positions: Positions) -> None:
    if not positions:
        return
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.projector_positions (topic, partition, next_offset) "
        "VALUES ($1, $2, $3) ON CONFLICT (topic, partition) DO UPDATE SET "
        "next_offset = EXCLUDED.next_offset",
        [(topic, partition, offset) for (topic, partition), offset in positions.items()],
    )
