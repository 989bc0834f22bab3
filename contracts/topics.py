"""The topic registry: logical names, partitions, keys and retention (SPEC §2)."""

from dataclasses import dataclass, field

DEFAULT_PREFIX = "loan-engine."
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
# A batch of 500 loans is ~0.5 MB of JSON before compression; leave room for wide tapes.
BATCH_CONFIG = {**KEEP_FOREVER, "max.message.bytes": str(16 * 1024 * 1024)}


@dataclass(frozen=True, slots=True)
class Topic:
    """One logical topic; `physical(prefix)` is the name on the broker."""

    name: str
    partitions: int
    key: str
    description: str
    config: dict[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))

    def physical(self, prefix: str = DEFAULT_PREFIX) -> str:
        """The broker-side topic name under a deployment prefix."""
        return f"{prefix}{self.name}"


LOAN_TAPES = Topic("loan-tapes.v1", 6, "tape id", "Producers' tape rows and end markers.")
RUNS = Topic("runs.v1", 6, "run id", "Run lifecycle: requested, started, ingested, completed.")
LOANS_INGESTED = Topic(
    "loans.ingested.v1", 6, "{run_id}:{batch_seq}", "Normalised loans.", BATCH_CONFIG
)
LOANS_EVALUATED = Topic(
    "loans.evaluated.v1", 6, "{run_id}:{batch_seq}", "Exceptions, DQ.", BATCH_CONFIG
)
LOANS_PRICED = Topic(
    "loans.priced.v1", 6, "{run_id}:{batch_seq}", "IRR-target pricing.", BATCH_CONFIG
)
LOANS_DISPOSITIONED = Topic(
    "loans.dispositioned.v1",
    6,
    "{run_id}:{batch_seq}",
    "Each loan's final disposition.",
    BATCH_CONFIG,
)
LOANS_SCORED = Topic(
    "loans.scored.v1",
    6,
    "{run_id}:{batch_seq}",
    "Each loan's model score, top factors and routing.",
    BATCH_CONFIG,
)
MODELS = Topic("models.v1", 1, "model name", "Model cards of the scoring models served.")
CORRECTIONS = Topic(
    "corrections.v1", 6, "loan id", "Analysts' record corrections (new cell text per field)."
)
DEAD_LETTERS = Topic(
    "dead-letters.v1", 3, "original key", "Messages no consumer could process.", BATCH_CONFIG
)
TRIAGE = Topic(
    "triage.v1", 6, "exception id", "Exception lifecycle: acknowledge, assign, resolve, waive."
)
AUDIT = Topic("audit.v1", 3, "target id", "One event per write action, login and logout.")
REVIEWS = Topic(
    "reviews.v1",
    6,
    "case id ({run_id}:{batch_seq} for auto decisions)",
    "Credit review: cases, their actions, decisions, overrides and auto decisions.",
)
NOTIFICATIONS = Topic(
    "notifications.v1",
    6,
    "notification id (user id for reads)",
    "Notifications raised for people (SLA, escalations, overrides, runs) and their read marks.",
)

ALL_TOPICS: tuple[Topic, ...] = (
    LOAN_TAPES,
    RUNS,
    LOANS_INGESTED,
    LOANS_EVALUATED,
    LOANS_PRICED,
    LOANS_DISPOSITIONED,
    LOANS_SCORED,
    MODELS,
    DEAD_LETTERS,
    TRIAGE,
    AUDIT,
    CORRECTIONS,
    REVIEWS,
    NOTIFICATIONS,
)
LOAN_TOPICS: tuple[Topic, ...] = (
    LOANS_INGESTED,
    LOANS_EVALUATED,
    LOANS_PRICED,
    LOANS_DISPOSITIONED,
    LOANS_SCORED,
)
