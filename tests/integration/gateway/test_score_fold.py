"""The loans.scored.v1 fold pinned value for value: each `loan_scores` row and `scored_batches` row
holds exactly what the scored batch's contract says, a redelivered or re-scored batch is upserted
(the values it carries now win), and an undecodable batch is rejected without writing a row. The
auto decisions recorded per scored batch on reviews.v1 leave one decision per loan, however often
they are delivered."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest
from conftest import gateway_settings

from contracts.codec import encode
from contracts.ids import batch_key, event_id
from contracts.reviews import AutoDecision, AutoDecisionsRecorded
from contracts.scoring import ScoredBatch
from contracts.topics import LOANS_SCORED, REVIEWS
from services.gateway.db import connect, migrate
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import write_chunk
from services.gateway.review.projection import auto_decision_id
from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_batches

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def fold_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        tmp_path_factory.mktemp("score-fold-storage"),
    )
    await migrate(settings)
    return settings


@pytest.fixture
async def conn(fold_settings: GatewaySettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(fold_settings)
    yield connection
    await connection.close()


def with_triggers(batches: list[ScoredBatch]) -> list[ScoredBatch]:
    """The first batch's first loan routed to review by two rules at once."""
    first = batches[0]
    event = first.events[0]
    routing = event.routing.model_copy(
        update={"triggers": ("loan_amount_above_limit", "property_type_listed")}
    )
    events = (event.model_copy(update={"routing": routing}), *first.events[1:])
    return [first.model_copy(update={"events": events}), *batches[1:]]


def records(batches: list[ScoredBatch], start: int = 0) -> list[Record]:
    return [
        Record(LOANS_SCORED.name, 0, offset, batch_key(b.run_id, b.batch_seq).encode(), encode(b))
        for offset, b in enumerate(batches, start)
    ]


def expected_scores(batches: list[ScoredBatch]) -> dict[int, dict[str, Any]]:
    """What the contract says each loan's row holds (JSON columns as JSON values)."""
    return {
        event.seq: {
            "loan_id": event.loan_id,
            "batch_seq": batch.batch_seq,
            "seller_loan_number": event.seller_loan_number,
            "disposition": event.disposition,
            "model_version": event.model_version,
            "score": event.score,
            "probability_default": event.probability_default,
            "risk_category": event.risk_category,
            "routing_decision": event.routing.decision,
            "routing_reason": event.routing.reason,
            "routing_triggers": list(event.routing.triggers),
            "policy_version": event.routing.policy_version,
            "positive_factors": [f.model_dump(mode="json") for f in event.positive_factors],
            "negative_factors": [f.model_dump(mode="json") for f in event.negative_factors],
            "features": event.features.model_dump(mode="json"),
            "scored_at": event.occurred_at,
        }
        for batch in batches
        for event in batch.events
    }


async def stored_scores(conn: asyncpg.Connection, run_id: object) -> dict[int, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT seq, loan_id, batch_seq, seller_loan_number, disposition, model_version, score, "
        "probability_default, risk_category, routing_decision, routing_reason, routing_triggers, "
        "policy_version, positive_factors::text, negative_factors::text, features::text, "
        f"scored_at FROM {SCHEMA}.loan_scores WHERE run_id = $1",
        run_id,
    )
    result = {}
    for row in rows:
        values = dict(row)
        seq = values.pop("seq")
        for name in ("positive_factors", "negative_factors", "features"):
            values[name] = orjson.loads(values[name])
        result[seq] = values
    return result


async def stored_batches(conn: asyncpg.Connection, run_id: object) -> list[tuple[int, ...]]:
    rows = await conn.fetch(
        "SELECT batch_seq, loans, auto_routed, first_seq, last_seq "
        f"FROM {SCHEMA}.scored_batches WHERE run_id = $1 ORDER BY batch_seq",
        run_id,
    )
    return [tuple(row) for row in rows]


def expected_batches(batches: list[ScoredBatch]) -> list[tuple[int, ...]]:
    return [
        (
            b.batch_seq,
            len(b.events),
            sum(e.routing.decision in ("auto_approve", "auto_decline") for e in b.events),
            min(e.seq for e in b.events),
            max(e.seq for e in b.events),
        )
        for b in batches
    ]


async def test_every_scored_loan_is_stored_exactly_as_its_contract_says(
    conn: asyncpg.Connection,
) -> None:
    scenario = RunScenario(loans=23, batch_size=5)
    batches = with_triggers(scored_batches(scenario))
    events = [event for batch in batches for event in batch.events]
    assert any(event.positive_factors for event in events)
    assert any(event.negative_factors for event in events)

    chunk = plan(records(batches))
    assert not chunk.rejected
    await write_chunk(conn, chunk, {}, 0)

    stored = await stored_scores(conn, scenario.run_id)
    expected = expected_scores(batches)
    assert stored == expected
    assert all(isinstance(row["scored_at"], datetime) for row in stored.values())
    assert await stored_batches(conn, scenario.run_id) == expected_batches(batches)


async def test_a_redelivered_and_then_rescored_batch_is_upserted_with_the_values_it_carries_now(
    conn: asyncpg.Connection,
) -> None:
    scenario = RunScenario(loans=12, batch_size=5)
    first = scored_batches(scenario)
    await write_chunk(conn, plan(records(first)), {}, 0)
    # The same batches again, then re-scored with other probabilities, in one chunk.
    rescored = scored_batches(scenario, probability=lambda seq: ((seq * 11) % 90) / 100)
    assert expected_scores(rescored) != expected_scores(first)
    await write_chunk(conn, plan(records(first) + records(rescored, len(first))), {}, 0)

    assert await stored_scores(conn, scenario.run_id) == expected_scores(rescored)
    assert await stored_batches(conn, scenario.run_id) == expected_batches(rescored)


async def test_a_scored_batch_breaking_its_contract_is_rejected_and_writes_nothing(
    conn: asyncpg.Connection,
) -> None:
    scenario = RunScenario(loans=5, batch_size=5)
    (batch,) = scored_batches(scenario)
    document = batch.model_dump(mode="json")
    document["events"][0]["score"] = 1001
    bad = Record(LOANS_SCORED.name, 0, 0, b"k", orjson.dumps(document))
    chunk = plan([bad])
    assert len(chunk.rejected) == 1
    assert "score" in chunk.rejected[0].reason
    await write_chunk(conn, chunk, {}, 0)
    assert await stored_scores(conn, scenario.run_id) == {}


def auto_decision_records(batches: list[ScoredBatch], start: int) -> list[Record]:
    events = [
        AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", b.run_id, b.batch_seq),
            run_id=b.run_id,
            batch_seq=b.batch_seq,
            decisions=tuple(
                AutoDecision(
                    loan_id=e.loan_id, seq=e.seq, decision_type=e.routing.decision, score=e.score
                )
                for e in b.events
                if e.routing.decision in ("auto_approve", "auto_decline")
            ),
            occurred_at=b.events[0].occurred_at,
        )
        for b in batches
    ]
    return [
        Record(REVIEWS.name, 0, offset, batch_key(e.run_id, e.batch_seq).encode(), encode(e))
        for offset, e in enumerate(events, start)
    ]


async def test_auto_decisions_recorded_again_leave_one_decision_per_auto_routed_loan(
    conn: asyncpg.Connection,
) -> None:
    scenario = RunScenario(loans=17, batch_size=5)
    batches = scored_batches(scenario)
    auto = {
        e.seq: (e.loan_id, e.routing.decision, e.score)
        for b in batches
        for e in b.events
        if e.routing.decision in ("auto_approve", "auto_decline")
    }
    assert auto
    decisions = auto_decision_records(batches, len(batches))
    # The scores and their decisions, with one batch's decisions delivered twice in the chunk.
    await write_chunk(conn, plan([*records(batches), *decisions, decisions[0]]), {}, 0)
    # A replay of every decision later on.
    await write_chunk(conn, plan(auto_decision_records(batches, 100)), {}, 0)

    rows = await conn.fetch(
        "SELECT decision_id, seq, loan_id, decision_type, outcome, status, score, decided_by, "
        f"conditions::text, case_id FROM {SCHEMA}.review_decisions WHERE run_id = $1",
        scenario.run_id,
    )
    assert {
        row["seq"]: (row["loan_id"], row["decision_type"], row["score"]) for row in rows
    } == auto
    assert len(rows) == len(auto)
    for row in rows:
        assert row["decision_id"] == auto_decision_id(scenario.run_id, row["loan_id"])
        expected = "approve" if row["decision_type"] == "auto_approve" else "decline"
        assert (row["outcome"], row["status"], row["decided_by"]) == (expected, "final", None)
        assert (row["conditions"], row["case_id"]) == ("[]", None)
