"""Every event contract by topic: the source of the committed JSON Schemas."""

from pydantic import BaseModel

from contracts import topics
from contracts.audit import AuditRecorded
from contracts.corrections import FindingReviewed, LoanCorrected
from contracts.dead_letters import DeadLetter
from contracts.loans import DispositionedBatch, EvaluatedBatch, IngestedBatch, PricedBatch
from contracts.notifications import NOTIFICATION_EVENTS
from contracts.reviews import REVIEW_EVENTS
from contracts.runs import (
    OutputsWritten,
    RunCompleted,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)
from contracts.scoring import ModelLoaded, ScoredBatch
from contracts.tapes import TapeEnd, TapeRow
from contracts.triage import TRIAGE_EVENTS

EVENTS_BY_TOPIC: dict[str, tuple[type[BaseModel], ...]] = {
    topics.LOAN_TAPES.name: (TapeRow, TapeEnd),
    topics.RUNS.name: (
        RunRequested,
        RunReprocessRequested,
        RunRetryRequested,
        RunStarted,
        TapeIngested,
        RunFailed,
        OutputsWritten,
        RunCompleted,
    ),
    topics.LOANS_INGESTED.name: (IngestedBatch,),
    topics.LOANS_EVALUATED.name: (EvaluatedBatch,),
    topics.LOANS_PRICED.name: (PricedBatch,),
    topics.LOANS_DISPOSITIONED.name: (DispositionedBatch,),
    topics.LOANS_SCORED.name: (ScoredBatch,),
    topics.MODELS.name: (ModelLoaded,),
    topics.DEAD_LETTERS.name: (DeadLetter,),
    topics.TRIAGE.name: TRIAGE_EVENTS,
    topics.AUDIT.name: (AuditRecorded,),
    topics.CORRECTIONS.name: (LoanCorrected, FindingReviewed),
    topics.REVIEWS.name: REVIEW_EVENTS,
    topics.NOTIFICATIONS.name: NOTIFICATION_EVENTS,
}
ALL_MODELS: tuple[type[BaseModel], ...] = tuple(
    model for models in EVENTS_BY_TOPIC.values() for model in models
)
