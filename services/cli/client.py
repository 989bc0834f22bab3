"""What the pipeline and tape commands share: finding the stack, and runs as the log knows them.

The CLI needs no database: `runs.v1` is the system of record, so a run's state is the fold of its
events, read from the beginning of the topic (it holds a handful of events per run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from contracts import run_fold
from contracts.codec import decode_union
from contracts.run_fold import DONE, RunFacts
from contracts.runs import (
    DECISION_TAPE,
    OUTPUT_KEYS,
    RUN_EVENT,
    OutputsWritten,
    Phase,
    RunCompleted,
    RunDecided,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)
from contracts.topics import RUNS
from services.cli import reach
from services.common.settings import ServiceSettings

TERMINAL = frozenset({"completed", "failed", "decided"})


class CliSettings(ServiceSettings):
    """The stack's infrastructure as the CLI sees it (env prefix `CLI_` for its own knobs)."""

    model_config = SettingsConfigDict(
        env_prefix="CLI_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "loan-engine-cli"
    poll_timeout_ms: int = 500
    api_url: str | None = Field(
        None, description="The gateway for API commands (default: the stack's gateway port)."
    )
    username: str | None = Field(None, description="Who API commands log in as.")
    password: SecretStr | None = Field(None, description="Their password (or --password-stdin).")
    api_timeout_seconds: float = Field(90.0, gt=0, description="How long one API call may take.")


def load_settings(env_file: Path | None = None) -> CliSettings:
    """Settings from the environment, else the stack's env file, else `.env`, else defaults."""
    files = (Path(".env"), env_file) if env_file is not None else reach.env_files()
    # Later files win over earlier ones; real environment variables win over both.
    return CliSettings(_env_file=files)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class RunView:
    """One run folded from its `runs.v1` events, as the CLI shows it."""

    run_id: UUID
    status: str = "pending"
    error: str | None = None
    created_at: datetime | None = None
    source: str | None = None
    attempt: int = 1
    last_phase: str | None = None
    total_loans: int | None = None
    total_balance: Decimal | None = None
    exceptions_count: int | None = None
    dispositions: dict[str, int] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    facts: RunFacts | None = field(default=None, repr=False)
    """The fold behind the view (contracts.run_fold); None for a run no event has reached."""

    @property
    def finished(self) -> bool:
        """Whether the run has completed (or been decided) or failed (a retry may follow)."""
        return self.status in TERMINAL


def apply(view: RunView, event: Any) -> RunView:
    """The run after one more of its events."""
    facts = run_fold.apply(event, view.facts or RunFacts(view.run_id))
    return view_of(facts, updated_at=event.occurred_at)


def view_of(facts: RunFacts, updated_at: datetime | None = None) -> RunView:
    """The CLI's shape of a run's facts: a retried run is pending until it starts, fails or
    completes again, and the phase shown is the one its latest milestone names."""
    source = None if facts.source_kind is None else f"{facts.source_kind}:{facts.source_location}"
    return RunView(
        run_id=facts.run_id,
        status="pending" if facts.retry_phase is not None else facts.status,
        error=facts.error,
        created_at=facts.created_at,
        source=source,
        attempt=facts.attempt,
        last_phase=_milestone_phase(facts),
        total_loans=facts.total_loans,
        total_balance=facts.total_balance,
        exceptions_count=facts.exceptions_count,
        dispositions=_dispositions(facts),
        reports={report.key: report.uri for report in facts.reports},
        updated_at=updated_at,
        facts=facts,
    )


def _dispositions(facts: RunFacts) -> dict[str, int]:
    """Loans per disposition once the run has completed, else none."""
    counts = {
        "to_purchase": facts.to_purchase,
        "projected": facts.projected,
        "rejected": facts.rejected,
    }
    return {key: count for key, count in counts.items() if count is not None}


def _milestone_phase(facts: RunFacts) -> Phase | None:
    """Ingest once started, the failed phase (also while its retry waits), archive once done."""
    if facts.status in DONE:
        return "archive"
    if facts.status == "failed":
        return facts.failed_phase
    if facts.retry_phase is not None:
        return facts.retry_phase
    return "ingest" if facts.status == "running" else None


def fold(events: Iterable[Any]) -> dict[UUID, RunView]:
    """Every run the events mention, in order of first appearance."""
    runs: dict[UUID, RunView] = {}
    for event in events:
        runs[event.run_id] = apply(runs.get(event.run_id) or RunView(event.run_id), event)
    return runs


def result_json(view: RunView) -> dict[str, Any]:
    """A run's result as SPEC §6 prints it (`--json`)."""
    dispositions = {key: view.dispositions.get(key, 0) for key in DISPOSITION_KEYS}
    return {
        "run_id": str(view.run_id),
        "status": view.status,
        "error": view.error,
        "total_loans": view.total_loans,
        "total_balance": None if view.total_balance is None else str(view.total_balance),
        "exceptions_count": view.exceptions_count,
        "dispositions": dispositions,
        "reports": {
            key: view.reports.get(key)
            for key in OUTPUT_KEYS
            # The decision tape is listed once the run is `decided` (SPEC §8).
            if key != DECISION_TAPE or key in view.reports
        },
    }


DISPOSITION_KEYS = ("to_purchase", "projected", "rejected")


def describe(event: Any) -> str:
    """One line of progress for a run event."""
    match event:
        case RunRequested() | RunReprocessRequested():
            return "requested"
        case RunRetryRequested():
            return f"retry requested (attempt {event.attempt}, from {event.phase})"
        case RunStarted():
            source = f"{event.source.kind} {event.source.location!r}"
            return f"started (attempt {event.attempt}): reading {source}"
        case TapeIngested():
            return f"ingested {event.total_loans} loans in {event.batch_count} batches"
        case RunFailed():
            return f"failed in {event.phase}: {event.error}"
        case OutputsWritten():
            return "reports written"
        case RunCompleted():
            return f"completed: {event.dispositions.model_dump()}"
        case RunDecided():
            return f"decided: {event.bought} loans bought, {event.decisions.model_dump()}"
    return event.event_type


class RunLog:
    """A group-less reader of `runs.v1` from its beginning; use as an async context manager.

    `on_event` is told of every event the reader folds, in log order, wherever it is read: while
    starting, catching up or following. A follower that reported only what it read after its
    catch-up would silently fold whatever the run did in the meantime (`started`, or the whole
    run when it was quick).
    """

    def __init__(
        self, settings: CliSettings, on_event: Callable[[Any], None] | None = None
    ) -> None:
        self.settings = settings
        self.topic = settings.topic(RUNS)
        # No group: every partition is assigned to this reader, from its earliest offset.
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.runs: dict[UUID, RunView] = {}
        self.on_event = on_event

    async def __aenter__(self) -> RunLog:
        try:
            await self.consumer.start()
            if self.topic not in await self.consumer.topics():
                raise LookupError(f"topic {self.topic} does not exist: is the stack up?")
            while not self.consumer.assignment():
                await self.read()
        except BaseException:
            await self.consumer.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self) -> list[Any]:
        """Consume what is available now, fold it and report it; the events read, in order."""
        polled = await self.consumer.getmany(timeout_ms=self.settings.poll_timeout_ms)
        events: list[Any] = []
        for records in polled.values():
            for record in records:
                event = _decode(record.value)
                if event is None:
                    continue
                events.append(event)
                self.runs[event.run_id] = apply(
                    self.runs.get(event.run_id) or RunView(event.run_id), event
                )
                if self.on_event is not None:
                    self.on_event(event)
        return events

    async def catch_up(self) -> dict[UUID, RunView]:
        """Read up to the end of the log as it is now; every run it knows."""
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        while await self._behind(ends):
            await self.read()
        return self.runs

    async def _behind(self, ends: dict[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await self.consumer.position(partition) < end:
                return True
        return False

    async def wait(
        self, run_id: UUID, timeout: float | None, *, after_catch_up: bool = True
    ) -> RunView | None:
        """Follow the log until the run completes or fails (or the timeout passes)."""
        if after_catch_up:
            await self.catch_up()
            view = self.runs.get(run_id)
            if view is not None and view.finished:
                return view
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.read()
                    view = self.runs.get(run_id)
                    if view is not None and view.finished:
                        return view
        except TimeoutError:
            return self.runs.get(run_id)


def _decode(value: bytes | None) -> Any:
    """A run event, or None for a record this CLI does not know (a newer event type)."""
    if value is None:
        return None
    try:
        return decode_union(value, RUN_EVENT)
    except ValidationError:
        return None
