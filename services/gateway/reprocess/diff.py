"""The outcome diff of a child run against its parent: pure, over both sides' loans.

Loans are matched by source file and row (a child's loan ids are its own: uuid5 of its run id).
A loan changed when its disposition, its exception types or its final price differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    """One loan's outcome in one run."""

    loan_id: UUID
    source_file: str
    row: int
    seller_loan_number: str | None
    disposition: str
    final_price: str | None
    exception_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """A loan whose outcome differs between the parent (before) and the child (after)."""

    after: Outcome
    before: Outcome | None

    @property
    def exceptions_added(self) -> list[str]:
        """Exception types the child raised that the parent did not."""
        earlier = set(self.before.exception_types) if self.before else set()
        return [kind for kind in self.after.exception_types if kind not in earlier]

    @property
    def exceptions_removed(self) -> list[str]:
        """Exception types the parent raised that the child did not."""
        if self.before is None:
            return []
        later = set(self.after.exception_types)
        return [kind for kind in self.before.exception_types if kind not in later]


@dataclass(frozen=True, slots=True)
class Diff:
    """Counts (changed, unchanged, per transition, new and dropped rows) and the changes."""

    counts: dict[str, int]
    changes: list[Change]


def outcome_of(row: Any) -> Outcome:
    """An outcome from a projected loan row (reprocess.repository.outcomes)."""
    return Outcome(
        row.loan_id,
        row.source_file,
        row.row,
        row.seller_loan_number,
        row.disposition,
        row.final_price,
        tuple(row.exception_types or ()),
    )


def diff(child: Iterable[Outcome], parent: Iterable[Outcome], *, partial: bool) -> Diff:
    """Compare every child loan with the parent's loan of the same row.

    A partial child holds only some rows: the parent's other rows are not compared. A whole child
    that lacks a parent row (or has one the parent lacks) counts it as `removed` (`added`).
    """
    before = {(o.source_file, o.row): o for o in parent}
    counts: Counter[str] = Counter(changed=0, unchanged=0)
    changes: list[Change] = []
    for after in child:
        earlier = before.pop((after.source_file, after.row), None)
        if earlier is None:
            counts["added"] += 1
            changes.append(Change(after, None))
            continue
        if _same(earlier, after):
            counts["unchanged"] += 1
            continue
        counts["changed"] += 1
        if earlier.disposition != after.disposition:
            counts[f"{earlier.disposition}->{after.disposition}"] += 1
        changes.append(Change(after, earlier))
    if not partial and before:
        counts["removed"] = len(before)
    return Diff(dict(counts), changes)


def _same(before: Outcome, after: Outcome) -> bool:
    return (
        before.disposition == after.disposition
        and before.final_price == after.final_price
        and before.exception_types == after.exception_types
    )


def page(changes: Sequence[Change], skip: int, limit: int) -> Sequence[Change]:
    """One page of the changes, in the child's tape order."""
    return changes[skip : skip + limit]
