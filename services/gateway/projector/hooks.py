"""Read models added beside the original projections: each a pair of functions over records.

`plan` (pure, in the planning thread) picks the rows a record adds, or raises for a record that
cannot be read (it is then dead-lettered like any other); `write` stores a chunk's rows in the
chunk's transaction, idempotently, so replays and rebuilds give the same tables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from services.gateway.projector.plan import Record


@dataclass(frozen=True, slots=True)
class ProjectionHook:
    """One extra read model: which rows a record adds, and how a chunk's rows are written."""

    name: str
    plan: Callable[[Record], Sequence[Any]]
    write: Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]


@cache
def hooks() -> tuple[ProjectionHook, ...]:
    """Every registered hook, in write order (imported late: the hooks import the planner)."""
    from services.gateway.corrections.projection import CORRECTIONS_HOOK
    from services.gateway.lineage.projection import POSITIONS_HOOK
    from services.gateway.reconciliation.projection import EDITS_HOOK, REVIEWS_HOOK

    return (POSITIONS_HOOK, CORRECTIONS_HOOK, REVIEWS_HOOK, EDITS_HOOK)
