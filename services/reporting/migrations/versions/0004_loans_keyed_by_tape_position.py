"""reporting loans are keyed by their run and tape position, without their loan id

A loan's id and its (run, seq) name the same loan, so the second index on every stored loan (a
random UUID's, the costlier to insert into) and the id itself are dropped: the primary key
becomes the (run_id, seq) index that completion already streams the reports by, and a
redelivered batch is skipped on it. The decision tape joins decisions to loans on (run_id, seq).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "reporting"


def upgrade() -> None:
    op.drop_constraint("loans_pkey", "loans", schema=SCHEMA)
    op.drop_index("loans_run_seq", table_name="loans", schema=SCHEMA)
    op.create_primary_key("loans_pkey", "loans", ["run_id", "seq"], schema=SCHEMA)
    op.drop_column("loans", "loan_id", schema=SCHEMA)


def downgrade() -> None:
    raise NotImplementedError(
        "reporting 0004 is one-way: the stored loans' ids are dropped (their tape position stays)"
    )
