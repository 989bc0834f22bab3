"""reporting loans keep their rendered report rows, not the whole event

Completion used to decode every stored LoanDispositioned event and render it; now each loan is
rendered once as its batch arrives and completion only concatenates text. Rows stored by the old
revision are rendered here, in chunks, so a run in flight during the upgrade completes as before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contracts.codec import decode, dumps
from contracts.loans import LoanDispositioned
from services.reporting.reports import render

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 2000


def upgrade() -> None:
    op.add_column(
        "loans",
        sa.Column(
            "report_rows", sa.Text(), nullable=True, comment="The loan's report rows as CSV text."
        ),
        schema="reporting",
    )
    op.add_column(
        "loans",
        sa.Column(
            "exceptions",
            sa.Text(),
            nullable=True,
            comment="JSON list of [type, category, severity, criteria, message]; null when none.",
        ),
        schema="reporting",
    )
    _render_stored_events()
    op.alter_column("loans", "report_rows", nullable=False, schema="reporting")
    op.drop_column("loans", "event", schema="reporting")


def downgrade() -> None:
    raise NotImplementedError(
        "reporting 0002 is one-way: the stored loan events are replaced by their report rows"
    )


def _render_stored_events() -> None:
    """Render every loan stored as an event by revision 0001."""
    connection = op.get_bind()
    select = sa.text(
        "SELECT loan_id, event FROM reporting.loans "
        "WHERE report_rows IS NULL ORDER BY loan_id LIMIT :chunk"
    )
    update = sa.text(
        "UPDATE reporting.loans SET report_rows = :rows, exceptions = :exceptions "
        "WHERE loan_id = :loan_id"
    )
    while rows := connection.execute(select, {"chunk": CHUNK}).all():
        values = []
        for loan_id, event in rows:
            loan = render(decode(event, LoanDispositioned))
            exceptions = dumps(loan.exceptions).decode() if loan.exceptions else None
            values.append({"loan_id": loan_id, "rows": loan.text, "exceptions": exceptions})
        connection.execute(update, values)
