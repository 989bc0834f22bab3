"""Every read model `projections rebuild` truncates and `projections checksum` digests: the
original projections and those of the governance packages (SPEC §7)."""

from sqlalchemy import Table

from services.gateway.corrections.tables import loan_corrections
from services.gateway.lineage.tables import batch_positions
from services.gateway.reconciliation.tables import reconciliation_reviews, run_edits
from services.gateway.tables import READ_MODEL_TABLES

ALL_READ_MODEL_TABLES: tuple[Table, ...] = (
    *READ_MODEL_TABLES,
    loan_corrections,
    batch_positions,
    reconciliation_reviews,
    run_edits,
)
"""Reconciliation results and findings are not here: they check the log's outputs against
storage, are recomputed on completion and on demand, and survive a rebuild."""
