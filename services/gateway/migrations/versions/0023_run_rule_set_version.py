"""Runs keep the rule-set version they were asked to evaluate with (SPEC §7 what-if).

Revision ID: 0023_run_rule_set_version
Revises: 0022_decided_runs
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_run_rule_set_version"
down_revision: str | None = "0022_decided_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Runs projected before this revision show null (the current rule set) until a rebuild
    # replays their requests.
    op.add_column("runs", sa.Column("rule_set_version", sa.Text(), nullable=True), schema="gateway")


def downgrade() -> None:
    op.drop_column("runs", "rule_set_version", schema="gateway")
