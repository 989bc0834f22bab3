"""Reconciliation of one run, pure (SPEC §7): every source row against its projected fact and
its report rows, field by field for the eleven canonical loan fields.

The service feeds loans in tape order (the source re-read from the archive, normalised as ingest
does, and the projected facts, both by `seq`); report rows are consumed in order from each report
as the loans' dispositions say they must appear (SPEC §3.8: rows in tape order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS

Kind = Literal["matched", "mismatched", "source_only", "downstream_only"]
KINDS: tuple[Kind, ...] = ("matched", "mismatched", "source_only", "downstream_only")
REPORT_OF: Mapping[str, str] = {
    "to_purchase": "purchase_tape",
    "projected": "projected_tape",
    "rejected": "rejection_report",
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PRICE_COLUMNS = ("disposition", "pricing_spread", "final_price")


@dataclass(frozen=True, slots=True)
class SourceLoan:
    """A source row as ingest reads it: canonical field text, and which numbers are invalid."""

    seq: int
    source_file: str
    row: int
    fields: Mapping[str, str | None]
    invalid: frozenset[str] = frozenset()

    def report_cells(self) -> list[str]:
        """The eleven loan cells its report rows must hold (SPEC §3.8)."""
        return [
            report_cell(name, self.fields.get(name), name in self.invalid) for name in LOAN_FIELDS
        ]


@dataclass(frozen=True, slots=True)
class ProjectedLoan:
    """A loan's projected fact."""

    seq: int
    loan_id: str
    source_file: str
    row: int
    fields: Mapping[str, str | None]
    disposition: str
    pricing_spread: str | None
    final_price: str | None
    exceptions_count: int


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field whose downstream value differs from the source's."""

    field: str
    where: str  # `loan_facts`, or `{report}:{line}`
    source: str | None
    downstream: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """A loan (or a downstream record) that does not reconcile."""

    kind: Kind
    locator: str
    seq: int | None = None
    loan_id: str | None = None
    source_file: str | None = None
    row: int | None = None
    seller_loan_number: str | None = None
    fields: tuple[FieldDiff, ...] = ()


def report_cell(name: str, value: str | None, invalid: bool) -> str:
    """A loan field as a report writes it: numbers that parsed as is, other text guarded."""
    if value is None:
        return ""
    if name in NUMERIC_FIELDS and not invalid:
        return value
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


class Rows:
    """A report's data rows, consumed in order, with their line numbers (header is line 1)."""

    def __init__(self, key: str, rows: Iterator[list[str]]) -> None:
        self.key = key
        self._rows = rows
        self._next: list[str] | None = None
        self.line = 1

    def peek(self) -> list[str] | None:
        """The next row without consuming it."""
        if self._next is None:
            self._next = next(self._rows, None)
        return self._next

    def take(self) -> list[str] | None:
        """The next row, consumed."""
        row = self.peek()
        if row is not None:
            self._next = None
            self.line += 1
        return row


@dataclass
class Reconciler:
    """Counts and findings of one run, fed loan by loan in tape order."""

    reports: Mapping[str, Rows]
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    def loan(self, source: SourceLoan | None, projected: ProjectedLoan | None) -> None:
        """One tape position: its source row, its projected fact, or both."""
        if source is None:
            assert projected is not None
            self._add(self._extra(projected))
        elif projected is None:
            self._add(self._unprojected(source))
        else:
            diffs = self._compare(source, projected)
            if diffs:
                self._add(_finding("mismatched", source, projected, diffs))
            else:
                self.counts["matched"] += 1

    def finish(self) -> None:
        """Report rows no loan accounted for are downstream only."""
        for key, rows in self.reports.items():
            while (row := rows.take()) is not None:
                self._add(
                    Finding(
                        "downstream_only",
                        f"report/{key}/{rows.line}",
                        seller_loan_number=row[0] if row else None,
                        fields=(FieldDiff("report_row", key, None, ",".join(row)),),
                    )
                )

    def _add(self, finding: Finding) -> None:
        self.counts[finding.kind] += 1
        if finding.kind != "matched":
            self.findings.append(finding)

    def _extra(self, projected: ProjectedLoan) -> Finding:
        return Finding(
            "downstream_only",
            f"projected/{projected.seq}",
            seq=projected.seq,
            loan_id=projected.loan_id,
            source_file=projected.source_file,
            row=projected.row,
            seller_loan_number=projected.fields.get("seller_loan_number"),
        )

    def _unprojected(self, source: SourceLoan) -> Finding:
        """A source row without a projected fact; its report rows, if any, are taken with it."""
        cells = source.report_cells()
        reported = []
        for rows in self.reports.values():
            while (row := rows.peek()) is not None and row[: len(cells)] == cells:
                rows.take()
                reported.append(rows.key)
        detail = FieldDiff("projected_fact", "loan_facts", "present", None)
        found = (detail, *(FieldDiff("report_row", key, "present", "present") for key in reported))
        return _finding("source_only", source, None, found)

    def _compare(self, source: SourceLoan, projected: ProjectedLoan) -> tuple[FieldDiff, ...]:
        diffs: list[FieldDiff] = []
        if (source.source_file, source.row) != (projected.source_file, projected.row):
            at = f"{source.source_file}:{source.row}"
            diffs.append(
                FieldDiff("position", "loan_facts", at, f"{projected.source_file}:{projected.row}")
            )
        for name in LOAN_FIELDS:
            if source.fields.get(name) != projected.fields.get(name):
                diffs.append(
                    FieldDiff(
                        name, "loan_facts", source.fields.get(name), projected.fields.get(name)
                    )
                )
        key = REPORT_OF.get(projected.disposition)
        if key is None or key not in self.reports:
            return (*diffs, FieldDiff("disposition", "loan_facts", None, projected.disposition))
        rows = self.reports[key]
        expected = [
            *source.report_cells(),
            projected.disposition,
            projected.pricing_spread or "",
            projected.final_price or "",
        ]
        for _ in range(max(projected.exceptions_count, 1) if key == "rejection_report" else 1):
            row = rows.take()
            if row is None:
                diffs.append(FieldDiff("report_row", key, "present", None))
                break
            names = (*LOAN_FIELDS, *PRICE_COLUMNS)
            for name, want, got in zip(names, expected, row, strict=False):
                if want != got:
                    diffs.append(FieldDiff(name, f"{key}:{rows.line}", want, got))
        return tuple(diffs)


def _finding(
    kind: Kind,
    source: SourceLoan,
    projected: ProjectedLoan | None,
    diffs: tuple[FieldDiff, ...],
) -> Finding:
    return Finding(
        kind,
        f"{source.source_file}/{source.row}",
        seq=source.seq,
        loan_id=projected.loan_id if projected else None,
        source_file=source.source_file,
        row=source.row,
        seller_loan_number=source.fields.get("seller_loan_number"),
        fields=diffs,
    )
