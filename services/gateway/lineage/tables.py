"""Where each loan batch of a run sits in the log: per stage, its partition and offset.

A loan's events are found from its batch (the same batch number on every loan topic, SPEC §2) and
its index in that batch, so the log positions of a million loans cost two thousand rows a stage.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, Table, Text, Uuid

from services.gateway.tables import loan_facts, metadata

batch_positions = Table(
    "batch_positions",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("stage", Text, primary_key=True),
    Column("batch_seq", Integer, primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
)

# GET /loans/{loan_id}/... finds a loan by its id.
loan_facts_by_id = Index("loan_facts_loan_id", loan_facts.c.loan_id)
