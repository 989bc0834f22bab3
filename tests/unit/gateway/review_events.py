"""Scored batches of a test run, built with the scoring service's own pure assessment (no model):
each loan's probability of default comes from a function of its tape position."""

from __future__ import annotations

from collections.abc import Callable

from contracts.ids import batch_key, event_id
from contracts.scoring import FEATURES, LoanScored, ScoredBatch
from contracts.topics import LOANS_SCORED, Topic
from services.scoring.domain import Prediction, assess, features_of, load_policy
from tests.unit.gateway.gateway_events import RunScenario

POLICY = load_policy()
MODEL_VERSION = "7"


def default_probability(seq: int) -> float:
    """A spread of probabilities: every routing occurs within a few dozen loans."""
    return ((seq * 37) % 60) / 100


def scored_batches(
    scenario: RunScenario, probability: Callable[[int], float] = default_probability
) -> list[ScoredBatch]:
    """The run's scored batches, one per dispositioned batch, same numbers and order."""
    batches = []
    for batch_seq, events in scenario._batches():
        scored = []
        for event in events:
            features = features_of(event.loan)
            contributions = tuple(((event.loan.seq + i) % 7 - 3) / 10 for i in range(len(FEATURES)))
            prediction = Prediction(probability(event.loan.seq), contributions)
            assessment = assess(event.disposition, features, prediction, POLICY)
            scored.append(
                LoanScored(
                    event_id=event_id("loan.scored", event.run_id, event.loan.loan_id),
                    run_id=event.run_id,
                    occurred_at=event.occurred_at,
                    producer="scoring",
                    loan_id=event.loan.loan_id,
                    seq=event.loan.seq,
                    seller_loan_number=event.loan.fields.seller_loan_number,
                    disposition=event.disposition,
                    model_version=MODEL_VERSION,
                    score=assessment.score,
                    probability_default=assessment.probability_default,
                    risk_category=assessment.risk_category,
                    positive_factors=assessment.positive_factors,
                    negative_factors=assessment.negative_factors,
                    routing=assessment.routing,
                    features=features,
                )
            )
        batches.append(
            ScoredBatch(
                run_id=scenario.run_id,
                batch_seq=batch_seq,
                params=scenario.params,
                model_version=MODEL_VERSION,
                policy_version=POLICY.version,
                events=tuple(scored),
            )
        )
    return batches


def scored_messages(scenario: RunScenario) -> list[tuple[Topic, str, ScoredBatch]]:
    """(topic, key, batch) of the run's scored batches."""
    return [
        (LOANS_SCORED, batch_key(batch.run_id, batch.batch_seq), batch)
        for batch in scored_batches(scenario)
    ]
