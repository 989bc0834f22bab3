"""Token validity: a per-user token version that every access and refresh token carries.

A password reset, a deactivation or a change of role (or team) bumps the version, so every token
issued before it is refused at once: on every authenticated request and on refresh.

Revision ID: 0002_token_validity
Revises: 0001
Create Date: 2026-12-06 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_token_validity"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_column("users", "token_version", schema="gateway")
