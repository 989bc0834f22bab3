"""A run's progress per phase, overall percentage and time left (pure: the clock is passed in).

Loan phases count loans from the batches' `loan-count` headers: ingest counts ingested loans,
validate and eligibility evaluated ones, pricing priced ones, disposition dispositioned ones.
Output and archive complete with the outputs-written event.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from contracts.run_fold import DONE
from contracts.runs import PHASES, REPORT_KEYS, Phase

PhaseStatus = Literal["pending", "running", "completed", "failed"]
Stage = Literal["ingested", "evaluated", "priced", "dispositioned"]
STAGES: tuple[Stage, ...] = ("ingested", "evaluated", "priced", "dispositioned")
PHASE_STAGE: Mapping[Phase, Stage] = {
    "ingest": "ingested",
    "validate": "evaluated",
    "eligibility": "evaluated",
    "pricing": "priced",
    "disposition": "dispositioned",
}
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class StageCount:
    """Loans seen on one loan topic for a run, and when the first and last batch came."""

    processed: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProgressFacts:
    """What the read models know about a run's progress."""

    status: str
    failed_phase: Phase | None
    started_at: datetime | None
    tape_ingested_at: datetime | None
    outputs_written_at: datetime | None
    completed_at: datetime | None
    total_loans: int | None
    reports_written: int
    archived_files: int | None
    stages: Mapping[str, StageCount]


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    """One phase: its status, loans (or files) processed of the total, and its timing."""

    phase: Phase
    status: PhaseStatus
    processed: int
    total: int | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: Decimal | None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Every phase, the overall percentage (2 decimals) and the estimated seconds left."""

    phases: tuple[PhaseProgress, ...]
    overall_percent: Decimal
    estimated_seconds_left: int | None


def _seconds(start: datetime | None, end: datetime | None) -> Decimal | None:
    if start is None or end is None:
        return None
    micros = (end - start) // timedelta(microseconds=1)
    return max(Decimal(micros) / Decimal(1_000_000), Decimal(0)).quantize(Decimal("0.001"))


def _status(
    facts: ProgressFacts, phase: Phase, started: datetime | None, completed: datetime | None
) -> PhaseStatus:
    if facts.status == "failed" and facts.failed_phase == phase:
        return "failed"
    if completed is not None or facts.status in DONE:
        return "completed"
    return "running" if started is not None else "pending"


def _loan_phase(facts: ProgressFacts, phase: Phase, now: datetime) -> PhaseProgress:
    count = facts.stages.get(PHASE_STAGE[phase], StageCount())
    total = facts.total_loans
    started = count.first_at
    if phase == "ingest":
        started = facts.started_at or count.first_at
        completed = facts.tape_ingested_at
    elif total is not None and count.processed >= total:
        completed = count.last_at or facts.tape_ingested_at
    else:
        completed = None
    status = _status(facts, phase, started, completed)
    if status == "completed" and completed is None:
        completed = facts.completed_at
    end = completed if status != "running" else now
    return PhaseProgress(
        phase, status, count.processed, total, started, completed, _seconds(started, end)
    )


def _file_phase(
    facts: ProgressFacts, phase: Phase, after: PhaseProgress, now: datetime
) -> PhaseProgress:
    if phase == "output":
        processed = len(REPORT_KEYS) if facts.outputs_written_at else 0
        total: int | None = len(REPORT_KEYS)
    else:
        processed = facts.archived_files or 0
        total = facts.archived_files
    started = after.completed_at if after.status == "completed" else None
    completed = facts.outputs_written_at
    status = _status(facts, phase, started, completed)
    end = completed if status != "running" else now
    return PhaseProgress(
        phase, status, processed, total, started, completed, _seconds(started, end)
    )


def _fraction(phase: PhaseProgress) -> Decimal:
    if phase.status == "completed":
        return Decimal(1)
    if not phase.total:
        return Decimal(0)
    return min(Decimal(phase.processed) / Decimal(phase.total), Decimal(1))


def run_progress(facts: ProgressFacts, now: datetime) -> RunProgress:
    """The progress of a run at `now` (SPEC §4 `GET /runs/{run_id}/progress`)."""
    phases: list[PhaseProgress] = []
    for phase in PHASES:
        if phase in PHASE_STAGE:
            phases.append(_loan_phase(facts, phase, now))
        else:
            phases.append(_file_phase(facts, phase, phases[-1], now))
    if facts.status in DONE:
        overall = HUNDRED
    else:
        overall = HUNDRED * sum(_fraction(phase) for phase in phases) / len(phases)
    # Percentages are shown to the cent, rounded half-even like every other figure.
    overall = overall.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return RunProgress(tuple(phases), overall, _eta(facts, overall, now))


def _eta(facts: ProgressFacts, overall: Decimal, now: datetime) -> int | None:
    if facts.status in DONE:
        return 0
    if facts.status != "running" or facts.started_at is None or not 0 < overall < HUNDRED:
        return None
    elapsed = _seconds(facts.started_at, now) or Decimal(0)
    left = elapsed * (HUNDRED - overall) / overall
    return int(left.to_integral_value(rounding=ROUND_HALF_EVEN))
