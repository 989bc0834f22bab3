"""The projector says when the read models are being replayed from the log.

Revision ID: 0024_projector_replaying
Revises: 0023_run_rule_set_version
Create Date: 2026-12-07 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_projector_replaying"
down_revision: str | None = "0023_run_rule_set_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A deployment upgraded in place has its read models caught up: not replaying.
    op.add_column(
        "projector_state",
        sa.Column("replaying", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_column("projector_state", "replaying", schema="gateway")
