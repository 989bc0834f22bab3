"""Data quality as the API shows it: the one run-means implementation (contracts.quality) with
the rule count of the rule-set version the run's loans were evaluated with."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS
from contracts.quality import RunQualityMeans, half_even, run_quality
from services.gateway.dq import repository as repo
from services.gateway.dq.rules_total import rule_set_version_of_run, rules_total_of_run
from services.gateway.dq.schemas import (
    Dimensions,
    DqFailure,
    DqSummary,
    FieldQuality,
    ScoreBand,
)
from services.gateway.runs import repository as runs_repo

BAND_EDGES = tuple(Decimal(edge) for edge in ("0", "50", "75", "90", "100"))


def dimensions(means: RunQualityMeans) -> Dimensions:
    """The API shape of a run's means."""
    return Dimensions(
        completeness=means.completeness,
        validity=means.validity,
        uniqueness=means.uniqueness,
        conformance=means.conformance,
        dq_score=means.dq_score,
    )


def percent(part: int, whole: int) -> Decimal:
    """part / whole in percent, half-even to 2 decimals (0 of nothing is 0)."""
    return half_even(Fraction(100 * part, whole), 2) if whole else Decimal("0.00")


async def summary(session: AsyncSession, run_id: UUID) -> DqSummary:
    """A run's dimensions, per-field completeness and validity, and score bands."""
    _, sums = await runs_repo.dispositioned_sums(session, run_id)
    means = run_quality(sums, await rules_total_of_run(session, run_id))
    counts = await repo.field_counts(session, run_id)
    loans = counts["loans"]
    fields = []
    for name in LOAN_FIELDS:
        present = counts[f"{name}:present"]
        valid = counts.get(f"{name}:valid") if name in NUMERIC_FIELDS else None
        fields.append(
            FieldQuality(
                field=name,
                present=present,
                completeness_pct=percent(present, loans),
                valid=valid,
                validity_pct=None if valid is None else percent(valid, present),
            )
        )
    bands = await repo.score_bands(session, run_id, BAND_EDGES)
    return DqSummary(
        run_id=run_id,
        loans=loans,
        rule_set_version=await rule_set_version_of_run(session, run_id),
        dimensions=dimensions(means),
        fields=fields,
        score_bands=[
            ScoreBand(low=low, high=high, loans=count)
            for low, high, count in zip(BAND_EDGES, BAND_EDGES[1:], bands, strict=False)
        ],
    )


def failure(row: Any) -> DqFailure:
    """A weak loan and what lowers its score."""
    return DqFailure(
        loan_id=row.loan_id,
        seq=row.seq,
        seller_loan_number=row.seller_loan_number,
        source_file=row.source_file,
        row=row.row,
        dq_score=row.dq_score,
        disposition=row.disposition,
        missing_fields=[name for name in LOAN_FIELDS if getattr(row, name) is None],
        invalid_fields=list(row.invalid or ()),
        duplicate=row.duplicate_of_row is not None,
    )
