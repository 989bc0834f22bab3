"""The corrections read model: one row per `loan.corrected` event, with its log position."""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Table, Text, Uuid

from services.gateway.tables import metadata

loan_corrections = Table(
    "loan_corrections",
    metadata,
    Column("correction_id", Uuid, primary_key=True),
    Column("loan_id", Uuid, nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("sales_team_id", Text),
    Column("source_file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("seller_loan_number", Text),
    Column("field", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("previous", Text),
    Column("reason", Text, nullable=False),
    Column("corrected_by", Text, nullable=False),
    Column("corrected_at", DateTime(timezone=True), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    # Per loan and per run, in the order they were recorded.
    Index("loan_corrections_loan", "loan_id", "corrected_at", "correction_id"),
    Index("loan_corrections_run", "run_id", "corrected_at", "correction_id"),
)
