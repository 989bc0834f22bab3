"""Where the lineage hook finds batches in the log: loan topics, scores and auto decisions."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from contracts.codec import encode
from contracts.ids import batch_key, event_id
from contracts.reviews import AutoDecision, AutoDecisionsRecorded
from contracts.topics import LOANS_SCORED, REVIEWS
from services.gateway.lineage.projection import plan_positions
from services.gateway.projector.plan import Record

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")


def auto_decisions(batch_seq: int) -> AutoDecisionsRecorded:
    return AutoDecisionsRecorded(
        event_id=event_id("review.auto_decisions_recorded", RUN, batch_seq),
        run_id=RUN,
        batch_seq=batch_seq,
        decisions=(AutoDecision(loan_id=uuid4(), seq=1, decision_type="auto_approve", score=780),),
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_a_scored_batch_is_placed_as_the_scored_stage_from_its_key() -> None:
    record = Record(LOANS_SCORED.name, 2, 41, batch_key(RUN, 3).encode(), b"{}")
    assert plan_positions(record) == [(RUN, "scored", 3, 2, 41)]


def test_a_batchs_auto_decisions_are_placed_as_the_decided_stage() -> None:
    event = auto_decisions(4)
    record = Record(REVIEWS.name, 1, 7, batch_key(RUN, 4).encode(), encode(event))
    assert plan_positions(record) == [(RUN, "decided", 4, 1, 7)]


def test_a_review_case_event_has_no_batch_position() -> None:
    record = Record(REVIEWS.name, 0, 9, str(uuid4()).encode(), b'{"event_type":"x"}')
    assert plan_positions(record) == []
