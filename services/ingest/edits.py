"""A reprocess's edits to its parent's tape (SPEC §7): corrected cells and the rows to keep.

Pure: corrections replace a cell's text before normalisation, exactly as if the tape had said
so; rows outside a partial run's selection are still read (so duplicates are found against the
whole tape, as in the parent) but yield no loan.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.runs import ReprocessEdits

RowKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RowEdits:
    """Corrected cell text by (source file, row), and the rows to keep (None keeps all)."""

    corrections: Mapping[RowKey, Mapping[str, str]] = field(default_factory=dict)
    keep: frozenset[RowKey] | None = None

    @classmethod
    def of(cls, edits: ReprocessEdits | None) -> "RowEdits | None":
        """The edits a reprocess request carries; None when it carries none."""
        if edits is None:
            return None
        corrections: dict[RowKey, dict[str, str]] = {}
        # In recorded order: a later correction of the same cell wins.
        for cell in edits.corrections:
            corrections.setdefault((cell.source_file, cell.row), {})[cell.field] = cell.value
        keep = None if edits.rows is None else frozenset((r.source_file, r.row) for r in edits.rows)
        return cls(corrections, keep)

    def keeps(self, source_file: str, row: int) -> bool:
        """Whether the row yields a loan in this run."""
        return self.keep is None or (source_file, row) in self.keep

    def apply(
        self, source_file: str, row: int, values: Mapping[str, str | None]
    ) -> Mapping[str, str | None]:
        """The row's values (by normalised column name) with corrected cells in place."""
        corrected = self.corrections.get((source_file, row))
        return values if not corrected else {**values, **corrected}
