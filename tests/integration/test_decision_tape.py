"""Reporting decides runs from reviews.v1 against a real PostgreSQL (SPEC §8): the decision tape
is written once every loan of a completed run has a final decision, an override counts only once
a second person approved it, a rejected one takes the decision away, an action the case fold
refuses changes nothing, and a redelivery decides nothing twice. `DecisionService` is driven
directly with a recording publisher, so every order of events is the test's choice."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import wire
from contracts.codec import decode, encode
from contracts.dead_letters import DeadLetter
from contracts.ids import event_id, review_case_id
from contracts.loans import PricedBatch
from contracts.reviews import (
    AutoDecision,
    AutoDecisionsRecorded,
    Condition,
    ReviewCaseAssigned,
    ReviewCaseOpened,
    ReviewCaseStarted,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
)
from contracts.runs import RunCompleted, RunDecided
from contracts.topics import DEAD_LETTERS, REVIEWS, RUNS, Topic
from services.common.db import make_engine, upgrade
from services.common.kafka import KafkaPublisher
from services.common.storage import LocalStorage
from services.reporting.deciding import DecisionService
from services.reporting.decision_repository import decisions
from services.reporting.decision_tape import header
from services.reporting.main import build_app
from services.reporting.reports import render
from services.reporting.repository import ReportingRepository
from services.reporting.service import dispositioned_batch
from services.reporting.settings import ReportingSettings
from tests.factories import OCCURRED_AT, loan_exception, loan_priced, loan_record, run_params

pytestmark = pytest.mark.integration

ANALYST = UUID("aaaaaaaa-0000-4000-8000-000000000001")
SENIOR = UUID("aaaaaaaa-0000-4000-8000-000000000002")
JUSTIFICATION = "The borrower's verified reserves cover two years of payments in full."


class RecordingPublisher:
    """Collects what the service publishes, in order."""

    def __init__(self) -> None:
        self.published: list[BaseModel] = []

    async def publish(self, topic: Topic, key: str, event: BaseModel, headers: Any = None) -> None:
        assert (topic.name, key) == ("runs.v1", str(event.run_id))  # type: ignore[attr-defined]
        assert headers is None
        self.published.append(event)

    async def publish_batch(self, topic: Topic, batch: Any, headers: Any = None) -> None:
        raise AssertionError(
            f"deciding publishes no loan batches ({topic.name}, {batch}, {headers})"
        )

    def decided(self) -> list[RunDecided]:
        return [event for event in self.published if isinstance(event, RunDecided)]


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ReportingSettings(database_url=database_url))
    await upgrade(engine, "reporting")
    yield engine
    await engine.dispose()


class Run:
    """A completed three-loan run: L1 and L3 eligible, L2 rejected; its case events."""

    def __init__(self, engine: AsyncEngine, storage: LocalStorage, database_url: str) -> None:
        self.run_id = uuid4()
        self.engine = engine
        self.storage = storage
        self.publisher = RecordingPublisher()
        self.service = DecisionService(
            ReportingSettings(database_url=database_url),
            engine,
            storage,
            self.publisher,
            lambda: OCCURRED_AT,
        )
        self.loans = [
            loan_priced(loan_record(seq=1, run_id=self.run_id, seller_loan_number="L1")),
            loan_priced(
                loan_record(seq=2, run_id=self.run_id, seller_loan_number="L2"),
                exceptions=[loan_exception("ltv_ratio")],
            ),
            loan_priced(loan_record(seq=3, run_id=self.run_id, seller_loan_number="L3")),
        ]
        self.ids = [loan.loan.loan_id for loan in self.loans]
        self.case = review_case_id(self.ids[2])
        self.minutes = 0

    async def store_loans(self) -> None:
        """The loans as reporting stores them while dispositioning."""
        batch = dispositioned_batch(_priced(self.run_id, self.loans), OCCURRED_AT)
        async with self.engine.begin() as connection:
            await ReportingRepository(connection).add_loans(
                self.run_id, [render(event) for event in batch.events]
            )

    def report_row(self, index: int) -> str:
        batch = dispositioned_batch(_priced(self.run_id, self.loans), OCCURRED_AT)
        return render(batch.events[index]).text

    def completed(self) -> RunCompleted:
        return RunCompleted(
            event_id=event_id("run.completed", self.run_id),
            run_id=self.run_id,
            occurred_at=OCCURRED_AT,
            producer="reporting",
            total_loans=3,
            total_balance=0,  # type: ignore[arg-type]
            exceptions_count=1,
            dispositions={"to_purchase": 0, "projected": 2, "rejected": 1},  # type: ignore[arg-type]
            reports=(),
            completed_at=OCCURRED_AT,
        )

    def autos(self) -> AutoDecisionsRecorded:
        return AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", self.run_id, 0),
            run_id=self.run_id,
            batch_seq=0,
            decisions=(
                AutoDecision(loan_id=self.ids[0], seq=1, decision_type="auto_approve", score=910),
                AutoDecision(loan_id=self.ids[1], seq=2, decision_type="auto_decline", score=120),
            ),
            occurred_at=OCCURRED_AT,
        )

    def _common(self, kind: str, actor: UUID | None, role: str) -> dict[str, Any]:
        self.minutes += 1
        return {
            "event_id": event_id(kind, self.run_id, self.minutes),
            "case_id": self.case,
            "loan_id": self.ids[2],
            "run_id": self.run_id,
            "actor_id": actor,
            "actor_role": role,
            "occurred_at": OCCURRED_AT + timedelta(minutes=self.minutes),
        }

    def opened(self) -> list[ReviewEvent]:
        """The case opened, assigned to the analyst and started."""
        return [
            ReviewCaseOpened(
                **self._common("review.case_opened", None, "system"),
                seq=3,
                seller_loan_number="L3",
                model_version="1",
                score=700,
                routing_reason="borderline_score",
                loan_amount="250000",
                scored_at=OCCURRED_AT,
                priority_score=50,
                priority="medium",
                sla_deadline=OCCURRED_AT + timedelta(hours=8),
            ),
            ReviewCaseAssigned(
                **self._common("review.case_assigned", ANALYST, "analyst"), assignee=ANALYST
            ),
            ReviewCaseStarted(**self._common("review.case_started", ANALYST, "analyst")),
        ]

    def decision(
        self, outcome: str, *, override: bool, actor: UUID = ANALYST, **fields: Any
    ) -> ReviewDecisionRecorded:
        common = self._common("review.decision_recorded", actor, "analyst")
        types = {
            "approve": "analyst_approve",
            "approve_with_conditions": "analyst_approve_with_conditions",
            "decline": "analyst_decline",
        }
        return ReviewDecisionRecorded(
            **common,
            decision_id=common["event_id"],
            seq=3,
            decision_type=types[outcome],  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            score=700,
            model_leaning="decline",
            is_override=override,
            justification=JUSTIFICATION if override else None,
            review_time_seconds=60,
            **fields,
        )

    def verdict(self, decision: ReviewDecisionRecorded, approve: bool) -> ReviewEvent:
        if approve:
            return ReviewOverrideApproved(
                **self._common("review.override_approved", SENIOR, "senior_analyst"),
                decision_id=decision.decision_id,
            )
        return ReviewOverrideRejected(
            **{
                **self._common("review.override_rejected", SENIOR, "senior_analyst"),
                "notes": "Not convinced",
            },
            decision_id=decision.decision_id,
        )

    async def feed(self, *events: Any) -> None:
        for event in events:
            if isinstance(event, RunCompleted):
                await self.service.on_run_completed(event)
            else:
                await self.service.on_review(event)

    async def final_decisions(self) -> dict[UUID, tuple[str, bool, UUID | None]]:
        """The run's decisions as stored: loan -> (type, final, approved by)."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(
                    decisions.c.loan_id,
                    decisions.c.decision_type,
                    decisions.c.final,
                    decisions.c.approved_by,
                ).where(decisions.c.run_id == self.run_id)
            )
            return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def expected_override_tape(self) -> bytes:
        """The tape after the auto decisions and an approved override approving L3."""
        return (
            header()
            + self.report_row(0)[:-2]
            + ",auto_approve,910,,,,,2026-11-23T09:30:00Z\r\n"
            + self.report_row(2)[:-2]
            + f",analyst_approve,700,Standard terms,,{ANALYST},{SENIOR},2026-11-23T09:35:00Z\r\n"
        ).encode()

    def tape(self) -> bytes:
        return (self.storage.root / f"outputs/{self.run_id}/decision_tape.csv").read_bytes()


def _priced(run_id: UUID, loans: list[Any]) -> Any:
    batch = PricedBatch(run_id=run_id, batch_seq=0, params=run_params(), events=tuple(loans))
    return decode(encode(batch), wire.PricedBatch)


@pytest.fixture
async def run(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Run:
    made = Run(engine, LocalStorage(tmp_path / "storage"), database_url)
    await made.store_loans()
    return made


async def test_an_approved_override_is_the_last_decision_and_the_tape_lists_the_loans_bought(
    run: Run,
) -> None:
    decision = run.decision("approve", override=True, terms="Standard terms")
    await run.feed(run.completed(), run.autos(), *run.opened(), decision)
    assert run.publisher.decided() == []  # the override still waits for a second person

    approval = run.verdict(decision, approve=True)
    await run.feed(approval)

    [decided] = run.publisher.decided()
    assert decided.bought == 2
    assert decided.decisions.model_dump() == {
        "auto_approve": 1,
        "auto_decline": 1,
        "analyst_approve": 1,
        "analyst_approve_with_conditions": 0,
        "analyst_decline": 0,
    }
    assert decided.decided_at == approval.occurred_at
    assert decided.report.key == "decision_tape"
    assert decided.report.rows == 2
    assert (
        run.tape()
        == (
            header()
            + run.report_row(0)[:-2]
            + ",auto_approve,910,,,,,2026-11-23T09:30:00Z\r\n"
            + run.report_row(2)[:-2]
            + f",analyst_approve,700,Standard terms,,{ANALYST},{SENIOR},2026-11-23T09:35:00Z\r\n"
        ).encode()
    )
    archived = run.storage.root / decided.archive_output
    assert archived.read_bytes() == run.tape()

    # Redelivered, in any order: nothing is decided twice.
    await run.feed(approval, run.autos(), run.completed())
    assert len(run.publisher.decided()) == 1


async def test_a_rejected_override_takes_the_decision_away_until_the_analyst_decides_again(
    run: Run,
) -> None:
    override = run.decision("approve", override=True, terms="Standard terms")
    await run.feed(run.autos(), *run.opened(), override, run.verdict(override, approve=False))
    await run.feed(run.completed())
    assert run.publisher.decided() == []

    conditions = (Condition(condition_type="documentation", description="=Pay stubs"),)
    again = run.decision("approve_with_conditions", override=False, conditions=conditions)
    await run.feed(again)

    [decided] = run.publisher.decided()
    assert decided.decisions.analyst_approve_with_conditions == 1
    last = run.tape().decode().split("\r\n")[-2]
    assert last.endswith(
        f",analyst_approve_with_conditions,700,,documentation: =Pay stubs,{ANALYST},,"
        "2026-11-23T09:36:00Z"
    )


async def test_a_decision_the_case_fold_refuses_decides_nothing(run: Run) -> None:
    stranger = UUID("aaaaaaaa-0000-4000-8000-000000000009")
    refused = run.decision("decline", override=False, actor=stranger, reasoning="Too risky")
    await run.feed(run.completed(), run.autos(), *run.opened(), refused)
    assert run.publisher.decided() == []

    await run.feed(run.decision("decline", override=False, reasoning="Too risky"))

    [decided] = run.publisher.decided()
    assert (decided.bought, decided.decisions.analyst_decline) == (1, 1)


async def test_a_run_whose_decisions_came_first_is_decided_when_it_completes(run: Run) -> None:
    decision = run.decision("decline", override=False, reasoning="Too risky")
    await run.feed(run.autos(), *run.opened(), decision)
    assert run.publisher.decided() == []

    await run.feed(run.completed())

    assert len(run.publisher.decided()) == 1


async def test_a_whole_case_in_one_batch_decides_the_run_with_the_tape_one_at_a_time_gives(
    run: Run,
) -> None:
    opened = run.opened()
    decision = run.decision("approve", override=True, terms="Standard terms")
    approval = run.verdict(decision, approve=True)
    await run.feed(run.completed())

    await run.service.on_reviews([run.autos(), *opened, decision, approval])

    [decided] = run.publisher.decided()
    assert (decided.bought, decided.decisions.analyst_approve) == (2, 1)
    assert decided.decided_at == approval.occurred_at
    assert run.tape() == run.expected_override_tape()


async def test_duplicates_within_a_batch_and_a_redelivered_batch_are_applied_once(
    run: Run,
) -> None:
    opened = run.opened()
    decision = run.decision("approve", override=True, terms="Standard terms")
    approval = run.verdict(decision, approve=True)
    first = [run.autos(), opened[0], run.autos(), *opened, decision, opened[1]]
    await run.service.on_reviews(first)
    assert await run.final_decisions() == {
        run.ids[0]: ("auto_approve", True, None),
        run.ids[1]: ("auto_decline", True, None),
        run.ids[2]: ("analyst_approve", False, None),
    }

    # The first batch redelivered whole, with the approval that follows it; then completion.
    await run.service.on_reviews([*first, approval, approval])
    await run.feed(run.completed())
    await run.service.on_reviews([*first, approval])

    assert (await run.final_decisions())[run.ids[2]] == ("analyst_approve", True, SENIOR)
    assert len(run.publisher.decided()) == 1
    assert run.tape() == run.expected_override_tape()


async def test_a_refused_event_amid_good_ones_is_skipped_and_the_rest_of_the_batch_applied(
    run: Run,
) -> None:
    stranger = UUID("aaaaaaaa-0000-4000-8000-000000000009")
    opened = run.opened()
    refused = run.decision("decline", override=False, actor=stranger, reasoning="Too risky")
    good = run.decision("decline", override=False, reasoning="Too risky")
    await run.feed(run.completed())

    await run.service.on_reviews([*opened, refused, run.autos(), good])

    assert (await run.final_decisions())[run.ids[2]] == ("analyst_decline", True, None)
    [decided] = run.publisher.decided()
    assert (decided.bought, decided.decisions.analyst_decline) == (1, 1)
    assert decided.decided_at == good.occurred_at


async def test_an_override_rejected_and_decided_again_within_one_batch_keeps_the_last_decision(
    run: Run,
) -> None:
    opened = run.opened()
    override = run.decision("approve", override=True, terms="Standard terms")
    rejection = run.verdict(override, approve=False)
    conditions = (Condition(condition_type="documentation", description="=Pay stubs"),)
    again = run.decision("approve_with_conditions", override=False, conditions=conditions)

    await run.service.on_reviews([run.autos(), *opened, override, rejection, again])
    await run.feed(run.completed())

    [decided] = run.publisher.decided()
    assert decided.decisions.analyst_approve_with_conditions == 1
    assert (await run.final_decisions())[run.ids[2]] == (
        "analyst_approve_with_conditions",
        True,
        None,
    )


async def test_one_batch_holding_two_runs_decides_both(
    run: Run, engine: AsyncEngine, database_url: str
) -> None:
    other = Run(engine, run.storage, database_url)
    await other.store_loans()
    await run.feed(run.completed())
    await other.feed(other.completed())
    mine = [run.autos(), *run.opened(), run.decision("decline", override=False, reasoning="No")]
    theirs = [
        other.autos(),
        *other.opened(),
        other.decision("decline", override=False, reasoning="No"),
    ]

    await run.service.on_reviews([mine[0], theirs[0], *mine[1:], *theirs[1:]])

    assert sorted(str(event.run_id) for event in run.publisher.decided()) == sorted(
        [str(run.run_id), str(other.run_id)]
    )


async def read_topic_until(
    settings: ReportingSettings, topic: Topic, found: Callable[[bytes], bool], timeout: float = 90
) -> bytes:
    """The first record of `topic` (from its beginning) whose value is `found`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    try:
        partitions = [
            TopicPartition(settings.topic(topic), number) for number in range(topic.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            polled = await consumer.getmany(timeout_ms=500)
            for records in polled.values():
                for record in records:
                    if record.value is not None and found(record.value):
                        return record.value
    finally:
        await consumer.stop()
    raise AssertionError(f"nothing found on {topic.name} in {timeout} s")


async def test_through_the_broker_a_poll_of_review_events_decides_the_run_and_sets_aside_a_bad_one(
    run: Run, kafka_bootstrap_servers: str, module_topic_prefix: str, database_url: str
) -> None:
    config = ReportingSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        database_url=database_url,
        storage_root=run.storage.root,
        priced_group=f"reporting-{uuid4().hex[:8]}",
        runs_group=f"reporting-runs-{uuid4().hex[:8]}",
        reviews_group=f"reporting-reviews-{uuid4().hex[:8]}",
    )
    opened = run.opened()
    decision = run.decision("approve", override=True, terms="Standard terms")
    approval = run.verdict(decision, approve=True)
    bad = f'{{"event_type": "review.case_opened", "run_id": "{run.run_id}"}}'.encode()
    async with KafkaPublisher(config) as publisher:
        # Published before the worker starts, so its first poll holds them all, a copy of the
        # auto decisions and of the decision (a redelivery) and a record that is no event.
        autos = run.autos()
        await publisher.publish(REVIEWS, f"{run.run_id}:0", autos)
        for event in (*opened, decision):
            await publisher.publish(REVIEWS, str(event.case_id), event)
        await publisher.publish_raw(REVIEWS, None, bad)
        await publisher.publish(REVIEWS, f"{run.run_id}:0", autos)
        for event in (decision, approval):
            await publisher.publish(REVIEWS, str(event.case_id), event)
        await publisher.publish(RUNS, str(run.run_id), run.completed())

    async with LifespanManager(build_app(config), startup_timeout=90, shutdown_timeout=30):
        decided_body = await read_topic_until(
            config,
            RUNS,
            lambda value: b'"run.decided"' in value and str(run.run_id).encode() in value,
        )
        letter_body = await read_topic_until(
            config, DEAD_LETTERS, lambda value: decode(value, DeadLetter).payload == bad.decode()
        )

    decided = decode(decided_body, RunDecided)
    assert (decided.bought, decided.decisions.analyst_approve) == (2, 1)
    assert decided.decided_at == approval.occurred_at
    assert run.tape() == run.expected_override_tape()
    letter = decode(letter_body, DeadLetter)
    assert letter.payload == bad.decode()
    assert letter.reason.startswith("UndecodableMessage: not a valid review event")
