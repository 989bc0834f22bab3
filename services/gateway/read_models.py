"""Every read model `projections rebuild` truncates and `projections checksum` digests: the
original projections and those of the governance packages (SPEC §7)."""

from sqlalchemy import Table

from services.gateway.corrections.tables import loan_corrections
from services.gateway.lineage.tables import batch_positions
from services.gateway.tables import READ_MODEL_TABLES

ALL_READ_MODEL_TABLES: tuple[Table, ...] = (*READ_MODEL_TABLES, loan_corrections, batch_positions)
