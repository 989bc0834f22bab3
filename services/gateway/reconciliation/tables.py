"""Reconciliation tables.

`reconciliations` and `reconciliation_findings` hold the latest check of each run against its
archive and reports: a cache of a computation over storage, recomputed on completion and on
demand, so a rebuild keeps them (they are not projections of the log). `reconciliation_reviews`
(people's accept / flag, from `corrections.v1`) and `run_edits` (what a reprocess changed, from
`runs.v1`) are projections, rebuilt from the log.
"""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from services.gateway.tables import metadata

reconciliations = Table(
    "reconciliations",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("status", Text, nullable=False),
    Column("matched", BigInteger, nullable=False),
    Column("mismatched", BigInteger, nullable=False),
    Column("source_only", BigInteger, nullable=False),
    Column("downstream_only", BigInteger, nullable=False),
    Column("error", Text),
    Column("reconciled_at", DateTime(timezone=True), nullable=False),
)

reconciliation_findings = Table(
    "reconciliation_findings",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("finding_id", Uuid, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("locator", Text, nullable=False),
    Column("seq", Integer),
    Column("loan_id", Uuid),
    Column("source_file", Text),
    Column("row", Integer),
    Column("seller_loan_number", Text),
    Column("fields", JSONB, nullable=False),
    Index("reconciliation_findings_kind", "run_id", "kind", "ordinal"),
)

reconciliation_reviews = Table(
    "reconciliation_reviews",
    metadata,
    Column("finding_id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("action", Text, nullable=False),
    Column("notes", Text, nullable=False),
    Column("reviewed_by", Text, nullable=False),
    Column("reviewed_at", DateTime(timezone=True), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
)

run_edits = Table(
    "run_edits",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("edits", JSONB, nullable=False),
)
