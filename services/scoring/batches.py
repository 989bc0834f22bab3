"""A dispositioned batch in, the scored batch with the same number out (no Kafka here)."""

from contracts.ids import event_id
from contracts.loans import DispositionedBatch, LoanDispositioned
from contracts.scoring import LoanScored, ScoredBatch, ScoringFeatures
from services.scoring.domain import Prediction, RoutingPolicy, assess, features_of
from services.scoring.model import Scorer

PRODUCER = "scoring"


def scored(
    event: LoanDispositioned,
    features: ScoringFeatures,
    prediction: Prediction,
    model_version: str,
    policy: RoutingPolicy,
) -> LoanScored:
    """One loan's scored event; its id and time come from its input, so a replay is identical."""
    assessment = assess(event.disposition, features, prediction, policy)
    loan = event.loan
    return LoanScored(
        event_id=event_id("loan.scored", event.run_id, loan.loan_id),
        run_id=event.run_id,
        occurred_at=event.occurred_at,
        producer=PRODUCER,
        loan_id=loan.loan_id,
        seq=loan.seq,
        seller_loan_number=loan.fields.seller_loan_number,
        disposition=event.disposition,
        model_version=model_version,
        score=assessment.score,
        probability_default=assessment.probability_default,
        risk_category=assessment.risk_category,
        positive_factors=assessment.positive_factors,
        negative_factors=assessment.negative_factors,
        routing=assessment.routing,
        features=features,
    )


def scored_batch(
    batch: DispositionedBatch, scorer: Scorer, model_version: str, policy: RoutingPolicy
) -> ScoredBatch:
    """Score every loan of a batch in one vectorised model call; same run, number and order."""
    features = [features_of(event.loan) for event in batch.events]
    predictions = scorer.predict(features)
    return ScoredBatch(
        run_id=batch.run_id,
        batch_seq=batch.batch_seq,
        params=batch.params,
        model_version=model_version,
        policy_version=policy.version,
        events=tuple(
            scored(event, loan_features, prediction, model_version, policy)
            for event, loan_features, prediction in zip(
                batch.events, features, predictions, strict=True
            )
        ),
    )
