"""A run's read model (SPEC §3.7): the columns of the gateway `runs` table.

The rules that fold a run's events live in `contracts.run_fold`; this module only shapes its
`RunFacts` as columns. The table keeps neither the reports (`report_files` has them) nor a
pending retry (the API shows a retried run as running), so neither survives a stored row.
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from contracts.run_fold import RunFacts, RunStatus, SourceKind
from contracts.run_fold import apply as apply_fact
from contracts.run_fold import later_phase as later_phase  # re-exported: it was defined here
from contracts.runs import Phase

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RunState:
    """One run as the log tells it; the columns of the `runs` read model."""

    run_id: UUID
    status: RunStatus = "pending"
    last_phase: Phase | None = None
    failed_phase: Phase | None = None
    error: str | None = None
    source_kind: SourceKind | None = None
    source_location: str | None = None
    folder: str | None = None
    sales_team_id: str | None = None
    requested_by: str | None = None
    parent_run_id: UUID | None = None
    attempt: int = 1
    irr_target: Decimal | None = None
    pdate: date | None = None
    rule_set_version: str | None = None
    created_at: datetime | None = None
    run_weekday: int | None = None
    run_weekday_name: str | None = None
    started_at: datetime | None = None
    tape_ingested_at: datetime | None = None
    outputs_written_at: datetime | None = None
    completed_at: datetime | None = None
    total_loans: int | None = None
    total_balance: Decimal | None = None
    batch_count: int | None = None
    duplicates: int | None = None
    files: tuple[str, ...] | None = None
    exceptions_count: int | None = None
    to_purchase: int | None = None
    projected: int | None = None
    rejected: int | None = None
    archive_input: tuple[str, ...] | None = None
    archive_output: tuple[str, ...] | None = None
    decided_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Whether the run has reached a final status."""
        return self.status in ("completed", "failed", "decided")


RUN_FIELDS = tuple(f.name for f in fields(RunState))
# Columns that are facts as such; the weekday is derived from the creation time.
_FACT_FIELDS = tuple(name for name in RUN_FIELDS if name in RunFacts.__dataclass_fields__)
_LISTS = ("files", "archive_input", "archive_output")
_DECIMALS = ("irr_target", "total_balance")


def apply(event: object, state: RunState) -> RunState:
    """The run after `event` (contracts.run_fold); events of other types leave it unchanged."""
    return state_of(apply_fact(event, facts_of(state)))


def facts_of(state: RunState) -> RunFacts:
    """The facts a stored run holds (its creation time stands for when it was first seen)."""
    return RunFacts(**{name: getattr(state, name) for name in _FACT_FIELDS})


def state_of(facts: RunFacts) -> RunState:
    """The columns of a run: a run never seen created dates from its first event."""
    values = {name: getattr(facts, name) for name in _FACT_FIELDS}
    created_at = facts.created_at or facts.first_seen_at
    day, name = weekday(created_at) if created_at is not None else (None, None)
    values.update(created_at=created_at, run_weekday=day, run_weekday_name=name)
    return RunState(**values)


def state_from_mapping(values: Mapping[str, object]) -> RunState:
    """A run state from a stored row: lists become tuples, decimal texts Decimals."""
    found = {name: values[name] for name in RUN_FIELDS}
    for name in _LISTS:
        if found[name] is not None:
            found[name] = tuple(found[name])  # type: ignore[arg-type]
    for name in _DECIMALS:
        if found[name] is not None:
            found[name] = Decimal(str(found[name]))
    return RunState(**found)  # type: ignore[arg-type]


def state_to_row(state: RunState) -> tuple[object, ...]:
    """The stored row of a run state, in RUN_FIELDS order (decimals as their exact text)."""
    row: list[object] = []
    for name in RUN_FIELDS:
        value = getattr(state, name)
        if value is not None and name in _LISTS:
            value = list(value)
        elif value is not None and name in _DECIMALS:
            value = str(value)
        row.append(value)
    return tuple(row)


def weekday(created_at: datetime) -> tuple[int, str]:
    """The run's weekday (0 = Monday) and its English name, from its creation time in UTC."""
    day = created_at.astimezone(UTC).weekday()
    return day, WEEKDAY_NAMES[day]


def run_order(created_at: datetime) -> int:
    """Negated epoch microseconds: ascending order of it is newest-first order of runs."""
    delta = created_at.astimezone(UTC) - EPOCH
    return -((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
