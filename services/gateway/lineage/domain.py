"""Stage tracking and loan positions, pure (SPEC §7).

A run's loans pass nine stages: read from the tape, then the four loan topics, the reports, the
read models, and (with credit review) scoring and decisions. Each stage counts what came in
(what the previous stage let out) and what went out; a failed run's phase marks its records as
failed there, and loan batches seen upstream but not (yet) downstream are where records stand
still. A loan's events are found through its batch: batches are cut in tape order and keep their
number on every loan topic, so the batch holding `seq` follows from the batches' loan counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

T = TypeVar("T")

Stage = Literal[
    "read",
    "ingested",
    "evaluated",
    "priced",
    "dispositioned",
    "reported",
    "projected",
    "scored",
    "decided",
]
STAGES: tuple[Stage, ...] = (
    "read",
    "ingested",
    "evaluated",
    "priced",
    "dispositioned",
    "reported",
    "projected",
    "scored",
    "decided",
)
BATCH_STAGES: tuple[Stage, ...] = ("ingested", "evaluated", "priced", "dispositioned")
FAILED_PHASE_STAGE: Mapping[str, Stage] = {
    "ingest": "read",
    "validate": "evaluated",
    "eligibility": "evaluated",
    "pricing": "priced",
    "disposition": "dispositioned",
    "output": "reported",
    "archive": "reported",
}


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What the read models count for a run."""

    status: str
    failed_phase: str | None
    total_loans: int | None
    reported: int | None
    projected: int
    batches: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    """Loans per batch number, per loan-topic stage."""
    scored: int | None = None
    """Loans with a model score; None where no scoring service runs."""
    decided: int | None = None
    """Loans with a final credit decision; None where no scoring service runs."""


@dataclass(frozen=True, slots=True)
class StageReport:
    """One stage: records in and out, failed here, and the batches held up before it."""

    stage: Stage
    available: bool
    records_in: int | None
    records_out: int | None
    failed: int
    stuck: int
    stuck_batches: tuple[int, ...] = ()


def stage_reports(counts: RunCounts) -> list[StageReport]:
    """Every stage of a run in pipeline order."""
    outs: dict[Stage, int | None] = {
        "read": counts.total_loans
        if counts.total_loans is not None
        else _total(counts.batches.get("ingested")),
        **{stage: _total(counts.batches.get(stage)) for stage in BATCH_STAGES},
        "reported": counts.reported,
        "projected": counts.projected,
    }
    if counts.scored is not None:
        outs["scored"] = counts.scored
    if counts.decided is not None:
        outs["decided"] = counts.decided
    failed_stage = (
        FAILED_PHASE_STAGE.get(counts.failed_phase or "") if counts.status == "failed" else None
    )
    reports: list[StageReport] = []
    previous: int | None = None
    for index, stage in enumerate(STAGES):
        available = stage in outs
        out = outs.get(stage)
        records_in = out if stage == "read" else previous
        held = (records_in or 0) - (out or 0) if available and records_in is not None else 0
        failed = max(held, 0) if stage == failed_stage else 0
        stuck_batches: tuple[int, ...] = ()
        if stage in BATCH_STAGES and index > 1:
            upstream = counts.batches.get(STAGES[index - 1], {})
            here = counts.batches.get(stage, {})
            stuck_batches = tuple(sorted(seq for seq in upstream if seq not in here))
        reports.append(
            StageReport(
                stage=stage,
                available=available,
                records_in=records_in if available else None,
                records_out=out if available else None,
                failed=failed,
                stuck=max(held, 0) - failed,
                stuck_batches=stuck_batches,
            )
        )
        if available:
            previous = out
    return reports


def widest(per_stage: Mapping[str, Mapping[int, int]]) -> dict[int, int]:
    """Loans per batch over every stage (a batch seen on any topic has its count)."""
    merged: dict[int, int] = {}
    for batches in per_stage.values():
        for seq, count in batches.items():
            merged[seq] = max(merged.get(seq, 0), count)
    return merged


def _total(batches: Mapping[int, int] | None) -> int:
    return sum(batches.values()) if batches else 0


@dataclass(frozen=True, slots=True)
class BatchPlace:
    """Where a loan sits: its batch number and its index inside the batch."""

    batch_seq: int
    index: int


def place_of(seq: int, loans_per_batch: Mapping[int, int]) -> BatchPlace | None:
    """The batch holding the loan with tape position `seq`; None while earlier batches are unseen
    (their counts are needed to know where this one starts)."""
    first = 1
    for batch_seq in range(len(loans_per_batch)):
        count = loans_per_batch.get(batch_seq)
        if count is None:
            return None
        if seq < first + count:
            return BatchPlace(batch_seq, seq - first)
        first += count
    return None


def stuck_loans(batch_loan_ids: Sequence[Sequence[str]], limit: int) -> list[str]:
    """The first `limit` loan ids of the held-up batches, in batch order."""
    found: list[str] = []
    for loan_ids in batch_loan_ids:
        for loan_id in loan_ids:
            if len(found) >= limit:
                return found
            found.append(loan_id)
    return found


def in_history_order(
    chain: Sequence[T], actions: Sequence[T], time: Callable[[T], datetime]
) -> list[T]:
    """A loan's history: the chain of stages in its own order (each follows from the one before,
    whatever the services' clocks say), and actions merged in by time; an action earlier than a
    stage comes before it, ties after."""
    waiting = sorted(actions, key=time)
    merged: list[T] = []
    taken = 0
    for stage in chain:
        while taken < len(waiting) and time(waiting[taken]) < time(stage):
            merged.append(waiting[taken])
            taken += 1
        merged.append(stage)
    merged.extend(waiting[taken:])
    return merged
