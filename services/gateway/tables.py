"""The gateway's PostgreSQL tables (schema `gateway`): identity, read models, projector state.

Identity (users, teams, revoked tokens) is the only state kept outside the log; every other table
is a projection that `projections rebuild` can truncate and replay (see READ_MODEL_TABLES).
"""

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from contracts.ids import NS
from contracts.loans import LOAN_FIELDS

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)


def _ts(name: str, **kwargs: object) -> Column:
    return Column(name, DateTime(timezone=True), **kwargs)


teams = Table(
    "teams",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    _ts("created_at", nullable=False, server_default=func.now()),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("team_id", Text, ForeignKey(teams.c.id), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    # Bumped by a password reset, deactivation or role change: older tokens carry a lower one.
    Column("token_version", Integer, nullable=False, server_default="0"),
    _ts("created_at", nullable=False, server_default=func.now()),
    _ts("updated_at", nullable=False, server_default=func.now()),
    CheckConstraint(
        "role IN ('admin', 'analyst', 'senior_analyst', 'sales_team')", name="users_role"
    ),
    CheckConstraint("(role = 'sales_team') = (team_id IS NOT NULL)", name="users_team_role"),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    _ts("expires_at", nullable=False),
    # Purging expired revocations walks this index.
    Index("revoked_tokens_expires_at", "expires_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("status", Text, nullable=False),
    Column("last_phase", Text),
    Column("failed_phase", Text),
    Column("error", Text),
    Column("source_kind", Text),
    Column("source_location", Text),
    Column("folder", Text),
    Column("sales_team_id", Text),
    Column("requested_by", Text),
    Column("parent_run_id", Uuid),
    Column("attempt", Integer, nullable=False),
    # Decimals as their exact text: `numeric` would not give back `1E+5` or `8.050` as written.
    Column("irr_target", Text),
    Column("pdate", Date),
    _ts("created_at"),
    Column("run_weekday", SmallInteger),
    Column("run_weekday_name", Text),
    _ts("started_at"),
    _ts("tape_ingested_at"),
    _ts("outputs_written_at"),
    _ts("completed_at"),
    Column("total_loans", BigInteger),
    Column("total_balance", Text),
    Column("batch_count", Integer),
    Column("duplicates", Integer),
    Column("files", ARRAY(Text)),
    Column("exceptions_count", BigInteger),
    Column("to_purchase", BigInteger),
    Column("projected", BigInteger),
    Column("rejected", BigInteger),
    Column("archive_input", ARRAY(Text)),
    Column("archive_output", ARRAY(Text)),
    # The version a run was asked to evaluate with (None: the rules service's current one).
    Column("rule_set_version", Text),
    _ts("decided_at"),
    # GET /runs (newest first, keyset on created_at, run_id), unfiltered and per filter.
    Index("runs_newest", "created_at", "run_id"),
    Index("runs_status_newest", "status", "created_at", "run_id"),
    Index("runs_weekday_newest", "run_weekday", "created_at", "run_id"),
    Index("runs_team_newest", "sales_team_id", "created_at", "run_id"),
)

report_files = Table(
    "report_files",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("storage_key", Text, nullable=False),
    Column("uri", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    _ts("written_at", nullable=False),
)

run_batches = Table(
    "run_batches",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("stage", Text, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("loan_count", Integer, nullable=False),
    _ts("recorded_at", nullable=False),
)

batch_stats = Table(
    "batch_stats",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("loans", Integer, nullable=False),
    Column("to_purchase", Integer, nullable=False),
    Column("projected", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("exceptions", Integer, nullable=False),
    Column("present_fields", BigInteger, nullable=False),
    Column("validity_420", BigInteger, nullable=False),
    Column("unique_loans", BigInteger, nullable=False),
    Column("rules_passed", BigInteger, nullable=False),
    Column("dq_score", Numeric, nullable=False),
)

batch_exception_counts = Table(
    "batch_exception_counts",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("exception_type", Text, primary_key=True),
    Column("severity", Text, primary_key=True),
    Column("count", Integer, nullable=False),
)

# Each run's totals of the three batch tables above, kept by statement triggers on them as the
# projector inserts batches (migration 0027): a summary or progress reads a row per run (and
# stage, and exception type), not every batch of the run.
run_totals = Table(
    "run_totals",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("loans", BigInteger, nullable=False),
    Column("to_purchase", BigInteger, nullable=False),
    Column("projected", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("exceptions", BigInteger, nullable=False),
    Column("present_fields", BigInteger, nullable=False),
    Column("validity_420", BigInteger, nullable=False),
    Column("unique_loans", BigInteger, nullable=False),
    Column("rules_passed", BigInteger, nullable=False),
    Column("dq_score", Numeric, nullable=False),
)

run_stage_totals = Table(
    "run_stage_totals",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("stage", Text, primary_key=True),
    Column("loans", BigInteger, nullable=False),
    _ts("first_recorded_at", nullable=False),
    _ts("last_recorded_at", nullable=False),
)

run_exception_totals = Table(
    "run_exception_totals",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("exception_type", Text, primary_key=True),
    Column("severity", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

LOAN_FIELD_COLUMNS = LOAN_FIELDS

loan_facts = Table(
    "loan_facts",
    metadata,
    # Keyed by the run and tape position: appends stay at the right edge of the index, where a
    # random uuid key would touch a new page per loan. GET /loans?run_id= walks this key.
    Column("run_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("sales_team_id", Text),
    Column("source_file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    *(Column(name, Text) for name in LOAN_FIELD_COLUMNS),
    Column("invalid", ARRAY(Text), nullable=False),
    Column("extra", JSONB, nullable=False),
    Column("duplicate_of_file", Text),
    Column("duplicate_of_row", Integer),
    Column("disposition", Text, nullable=False),
    Column("pricing_spread", Text),
    Column("final_price", Text),
    Column("exceptions_count", SmallInteger, nullable=False),
    Column("dq_score", Numeric, nullable=False),
    Column("rule_set_version", Text, nullable=False),
    # GET /loans?run_id=&disposition= in tape order (keyset on seq).
    Index("loan_facts_run_disposition_seq", "run_id", "disposition", "seq"),
)

loan_exceptions = Table(
    "loan_exceptions",
    metadata,
    # One run's exceptions in tape order (GET /exceptions?run_id=) walk this key.
    Column("run_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("ordinal", SmallInteger, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("sales_team_id", Text),
    Column("seller_loan_number", Text),
    Column("source_file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("exception_type", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("rejection_criteria", Text, nullable=False),
    Column("disposition", Text, nullable=False),
    # The run's creation time, and its negated epoch microseconds so one ascending index walks
    # newest runs first and each run in tape order (NULL until the run's first event is seen).
    _ts("created_at"),
    Column("run_order", BigInteger),
    # SPEC §7: uuid5(NS, "{loan_id}/{exception_type}"), computed by PostgreSQL (uuid-ossp) so the
    # projector's COPY path stays as it is.
    Column(
        "exception_id",
        Uuid,
        Computed(
            f"uuid_generate_v5('{NS}'::uuid, loan_id::text || '/' || exception_type)",
            persisted=True,
        ),
    ),
    Index("loan_exceptions_exception_id", "exception_id"),
    Index("loan_exceptions_loan", "loan_id"),
    # GET /exceptions newest first: unfiltered, by type, by team; one run by type.
    Index("loan_exceptions_newest", "run_order", "run_id", "seq", "ordinal"),
    Index("loan_exceptions_type_newest", "exception_type", "run_order", "run_id", "seq", "ordinal"),
    Index("loan_exceptions_team_newest", "sales_team_id", "run_order", "run_id", "seq", "ordinal"),
    Index("loan_exceptions_run_type", "run_id", "exception_type", "seq", "ordinal"),
)

tapes = Table(
    "tapes",
    metadata,
    Column("tape_id", Text, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("max_row", Integer, nullable=False),
    Column("expected_rows", Integer),
    Column("pdate", Date),
    Column("irr_target", Text),
    Column("sales_team_id", Text),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("service", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", Text),
    Column("payload", Text, nullable=False),
    _ts("occurred_at", nullable=False),
    Index("dead_letters_newest", "occurred_at"),
)

projector_positions = Table(
    "projector_positions",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

projector_state = Table(
    "projector_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("generation", BigInteger, nullable=False),
    _ts("rebuilt_at"),
    # True from a rebuild (or a start from no positions) until the projector has caught up with
    # the log as it was then: read models that are still filling must not drive the review jobs.
    Column("replaying", Boolean, nullable=False, server_default=false()),
    CheckConstraint("id = 1", name="projector_state_single_row"),
)

exception_triage = Table(
    "exception_triage",
    metadata,
    # An exception's lifecycle state, folded from triage.v1 (no row: status `new`).
    Column("exception_id", Uuid, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("exception_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("assignee", Uuid),
    Column("waiver_requested_by", Uuid),
    Column("actions", Integer, nullable=False),
    _ts("updated_at"),
    _ts("closed_at"),
    Index("exception_triage_status", "status"),
    Index("exception_triage_assignee", "assignee"),
)

exception_actions = Table(
    "exception_actions",
    metadata,
    # Every triage.v1 event, applied or rejected by the fold (an exception's action history).
    Column("event_id", Uuid, primary_key=True),
    Column("exception_id", Uuid, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_id", Uuid, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("notes", Text),
    Column("assignee", Uuid),
    Column("from_status", Text, nullable=False),
    Column("to_status", Text, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("reason", Text),
    Column("request_id", Text),
    _ts("occurred_at", nullable=False),
    Index("exception_actions_history", "exception_id", "offset"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # audit.v1: one row per audited action, newest first by (occurred_at, event_id).
    Column("event_id", Uuid, primary_key=True),
    _ts("occurred_at", nullable=False),
    Column("source", Text, nullable=False),
    Column("actor_id", Uuid),
    Column("actor", Text),
    Column("actor_role", Text),
    Column("action", Text, nullable=False),
    Column("method", Text),
    Column("path", Text),
    Column("target", JSONB, nullable=False),
    Column("request_id", Text),
    Column("client_address", Text),
    Column("outcome", Text, nullable=False),
    Column("status_code", Integer),
    Index("audit_log_newest", "occurred_at", "event_id"),
    Index("audit_log_actor_newest", "actor_id", "occurred_at", "event_id"),
    Index("audit_log_action_newest", "action", "occurred_at", "event_id"),
)

loan_scores = Table(
    "loan_scores",
    metadata,
    # loans.scored.v1: each loan's model score, factors, routing and model inputs (SPEC §8).
    Column("run_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("batch_seq", Integer, nullable=False),
    Column("seller_loan_number", Text),
    Column("disposition", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("probability_default", Text, nullable=False),
    Column("risk_category", Text, nullable=False),
    Column("routing_decision", Text, nullable=False),
    Column("routing_reason", Text, nullable=False),
    Column("routing_triggers", ARRAY(Text), nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("positive_factors", JSONB, nullable=False),
    Column("negative_factors", JSONB, nullable=False),
    Column("features", JSONB, nullable=False),
    _ts("scored_at", nullable=False),
    Index("loan_scores_loan", "loan_id"),
    Index("loan_scores_run_routing", "run_id", "routing_decision", "seq"),
)

scored_batches = Table(
    "scored_batches",
    metadata,
    # One row per scored batch: the review job finds batches whose auto decisions are not
    # recorded by batch (thousands of rows) instead of by loan (millions).
    Column("run_id", Uuid, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("loans", Integer, nullable=False),
    Column("auto_routed", Integer, nullable=False),
    Column("first_seq", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
)

auto_decided_batches = Table(
    "auto_decided_batches",
    metadata,
    # Scored batches whose auto decisions are recorded on reviews.v1.
    Column("run_id", Uuid, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("decisions", Integer, nullable=False),
)

model_cards = Table(
    "model_cards",
    metadata,
    # models.v1: the card of every model version the scoring service has served.
    Column("model_name", Text, primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("card", JSONB, nullable=False),
    _ts("loaded_at", nullable=False),
)

review_cases = Table(
    "review_cases",
    metadata,
    # reviews.v1: one credit review case per `human_review` loan, its lifecycle state.
    Column("case_id", Uuid, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("seller_loan_number", Text),
    Column("model_version", Text, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("routing_reason", Text, nullable=False),
    Column("loan_amount", Text),
    _ts("scored_at", nullable=False),
    Column("opened_priority_score", SmallInteger, nullable=False),
    Column("opened_priority", Text, nullable=False),
    _ts("opened_at", nullable=False),
    _ts("sla_deadline", nullable=False),
    Column("status", Text, nullable=False),
    Column("assignee", Uuid),
    Column("releases", Integer, nullable=False),
    Column("actions", Integer, nullable=False),
    _ts("assigned_at"),
    _ts("started_at"),
    _ts("updated_at"),
    Column("decision_id", Uuid),
    Column("decided_by", Uuid),
    _ts("decided_at"),
    Column("conditions", SmallInteger, nullable=False),
    Column("fulfilled", ARRAY(SmallInteger), nullable=False),
    # The SLA job's marks: warned, breached, escalated (each once per case).
    _ts("sla_warned_at"),
    _ts("sla_breached_at"),
    _ts("escalated_at"),
    Index("review_cases_loan", "loan_id", unique=True),
    Index("review_cases_run", "run_id", "seq"),
    Index("review_cases_status_deadline", "status", "sla_deadline"),
    Index("review_cases_assignee", "assignee", "status"),
)

review_actions = Table(
    "review_actions",
    metadata,
    # Every reviews.v1 event, applied or rejected by the fold (a case's history).
    Column("event_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_id", Uuid),
    Column("actor_role", Text, nullable=False),
    Column("notes", Text),
    Column("assignee", Uuid),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("applied", Boolean, nullable=False),
    Column("reason", Text),
    Column("request_id", Text),
    _ts("occurred_at", nullable=False),
    Index("review_actions_history", "case_id", "offset"),
)

review_decisions = Table(
    "review_decisions",
    metadata,
    # Every loan's decision (SPEC §8): auto decisions and analysts' (with their override state).
    Column("decision_id", Uuid, primary_key=True),
    Column("case_id", Uuid),
    Column("loan_id", Uuid, nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("decision_type", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    # final | override_pending | override_rejected
    Column("status", Text, nullable=False),
    Column("terms", Text),
    Column("conditions", JSONB, nullable=False),
    Column("fulfilled", ARRAY(SmallInteger), nullable=False),
    Column("reasoning", Text),
    Column("justification", Text),
    Column("score", SmallInteger, nullable=False),
    Column("model_leaning", Text),
    Column("is_override", Boolean, nullable=False),
    Column("review_time_seconds", Integer),
    Column("decided_by", Uuid),
    Column("decided_role", Text, nullable=False),
    _ts("decided_at", nullable=False),
    Column("override_by", Uuid),
    _ts("override_at"),
    Column("override_notes", Text),
    Index("review_decisions_run", "run_id", "seq"),
    Index("review_decisions_loan", "loan_id"),
    Index("review_decisions_status", "status", "decided_at"),
    # The override notification job: overrides decided since a moment (few among millions).
    Index(
        "review_decisions_overrides",
        "override_at",
        "decision_id",
        postgresql_where=text("is_override"),
    ),
)

notifications = Table(
    "notifications",
    metadata,
    # notifications.v1: every notification raised, with its recipients.
    Column("notification_id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("subject_id", Uuid, nullable=False),
    Column("team_id", Text),
    Column("run_id", Uuid),
    Column("case_id", Uuid),
    Column("decision_id", Uuid),
    Column("recipients", ARRAY(Uuid), nullable=False),
    _ts("occurred_at", nullable=False),
    # The jobs find subjects not yet notified of by (kind, subject).
    Index("notifications_subject", "kind", "subject_id", unique=True),
    Index("notifications_recipients", "recipients", postgresql_using="gin"),
    Index("notifications_team", "team_id", "occurred_at"),
)

notification_reads = Table(
    "notification_reads",
    metadata,
    # notifications.v1: notifications a user marked read one by one.
    Column("user_id", Uuid, primary_key=True),
    Column("notification_id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    _ts("read_at", nullable=False),
)

notification_read_marks = Table(
    "notification_read_marks",
    metadata,
    # notifications.v1: a user's "mark all read": everything raised up to `read_through`.
    Column("user_id", Uuid, primary_key=True),
    _ts("read_through", nullable=False),
    Column("event_id", Uuid, nullable=False),
)

team_webhooks = Table(
    "team_webhooks",
    metadata,
    # Configuration (not a read model): a team's webhook, set by an admin.
    Column("team_id", Text, ForeignKey(teams.c.id, ondelete="CASCADE"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # Side effects (not a read model: a rebuild must never send again): one per notification
    # and team webhook, with its retry state.
    Column("delivery_id", Uuid, primary_key=True),
    Column("notification_id", Uuid, nullable=False),
    Column("team_id", Text, nullable=False),
    # pending | delivered | failed
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    _ts("next_attempt_at", nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    _ts("created_at", nullable=False),
    _ts("delivered_at"),
    Index("webhook_deliveries_notification", "notification_id", "team_id", unique=True),
    Index("webhook_deliveries_due", "state", "next_attempt_at"),
    Index("webhook_deliveries_team", "team_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    # The delivery log: every POST tried, with its answer.
    Column("delivery_id", Uuid, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    _ts("attempted_at", nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
)

READ_MODEL_TABLES: tuple[Table, ...] = (
    runs,
    report_files,
    run_batches,
    batch_stats,
    batch_exception_counts,
    run_totals,
    run_stage_totals,
    run_exception_totals,
    loan_facts,
    loan_exceptions,
    tapes,
    dead_letters,
    exception_triage,
    exception_actions,
    audit_log,
    loan_scores,
    scored_batches,
    model_cards,
    review_cases,
    review_actions,
    review_decisions,
    auto_decided_batches,
    notifications,
    notification_reads,
    notification_read_marks,
)
"""Tables built only from the log: truncated by a rebuild, digested by the checksum."""
