"""A run's session-level advisory locks: one process at a time completes it, one decides it.

Completion and deciding take different keys of the same run (its first and its last 8 bytes), so
a run's decision never waits for its completion's lock, nor the other way round.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Purpose = Literal["complete", "decide"]


def lock_key(run_id: UUID, purpose: Purpose) -> int:
    """The advisory-lock key of completing (first 8 bytes) or deciding (last 8) a run."""
    part = run_id.bytes[:8] if purpose == "complete" else run_id.bytes[8:]
    return int.from_bytes(part, "big", signed=True)


@asynccontextmanager
async def run_lock(engine: AsyncEngine, run_id: UUID, purpose: Purpose) -> AsyncIterator[bool]:
    """The run's lock for `purpose` if free; `held` says whether this caller got it."""
    key = {"key": lock_key(run_id, purpose)}
    async with engine.connect() as connection:
        held = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key))
        await connection.commit()
        try:
            yield held
        finally:
            if held:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                await connection.commit()
