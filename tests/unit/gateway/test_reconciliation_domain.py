"""Reconciliation of source rows against projected facts and report rows, pure (SPEC §7)."""

from collections.abc import Iterable

from contracts.loans import LOAN_FIELDS
from services.gateway.reconciliation.domain import (
    ProjectedLoan,
    Reconciler,
    Rows,
    SourceLoan,
    report_cell,
)


def fields(seq: int, **overrides: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = dict.fromkeys(LOAN_FIELDS)
    values.update(seller_loan_number=f"L-{seq}", loan_amount="250000.00", ltv_ratio="80")
    values.update(overrides)
    return values


def source(seq: int, **overrides: str | None) -> SourceLoan:
    return SourceLoan(seq, "tape.csv", seq, fields(seq, **overrides))


def projected(seq: int, disposition: str = "to_purchase", **overrides: str | None) -> ProjectedLoan:
    priced = disposition == "to_purchase"
    return ProjectedLoan(
        seq=seq,
        loan_id=f"id-{seq}",
        source_file="tape.csv",
        row=seq,
        fields=fields(seq, **overrides),
        disposition=disposition,
        pricing_spread="-1.5500" if priced else None,
        final_price="96.1250" if priced else None,
        exceptions_count=2 if disposition == "rejected" else 0,
    )


def report_row(loan: ProjectedLoan, **overrides: str) -> list[str]:
    cells = [report_cell(name, loan.fields[name], False) for name in LOAN_FIELDS]
    tail = [loan.disposition, loan.pricing_spread or "", loan.final_price or ""]
    row = dict(
        zip(
            (*LOAN_FIELDS, "disposition", "pricing_spread", "final_price"),
            cells + tail,
            strict=True,
        )
    )
    row.update(overrides)
    return list(row.values())


def reconciled(
    pairs: Iterable[tuple[SourceLoan | None, ProjectedLoan | None]],
    purchase: list[list[str]],
    rejection: list[list[str]] = [],  # noqa: B006 - never mutated
) -> Reconciler:
    reconciler = Reconciler(
        {
            "purchase_tape": Rows("purchase_tape", iter(purchase)),
            "projected_tape": Rows("projected_tape", iter([])),
            "rejection_report": Rows("rejection_report", iter(rejection)),
        }
    )
    for pair in pairs:
        reconciler.loan(*pair)
    reconciler.finish()
    return reconciler


def test_a_run_whose_records_agree_everywhere_is_all_matched() -> None:
    loans = [projected(1), projected(2, "rejected")]
    result = reconciled(
        [(source(1), loans[0]), (source(2), loans[1])],
        [report_row(loans[0])],
        [report_row(loans[1]), report_row(loans[1])],
    )
    assert dict(result.counts) == {"matched": 2}
    assert result.findings == []


def test_a_corrupted_report_cell_is_a_mismatch_naming_the_field_and_both_values() -> None:
    loan = projected(1)
    result = reconciled([(source(1), loan)], [report_row(loan, loan_amount="999")])
    [finding] = result.findings
    assert (finding.kind, finding.locator, finding.loan_id) == ("mismatched", "tape.csv/1", "id-1")
    [diff] = finding.fields
    assert (diff.field, diff.where, diff.source, diff.downstream) == (
        "loan_amount",
        "purchase_tape:2",
        "250000.00",
        "999",
    )


def test_a_projected_fact_that_differs_from_the_source_is_a_mismatch() -> None:
    loan = projected(1, ltv_ratio="85")
    result = reconciled([(source(1), loan)], [report_row(projected(1))])
    [diff] = result.findings[0].fields
    assert (diff.field, diff.where, diff.source, diff.downstream) == (
        "ltv_ratio",
        "loan_facts",
        "80",
        "85",
    )


def test_a_deleted_projected_fact_is_source_only_and_its_report_row_does_not_shift_others() -> None:
    first, second = projected(1), projected(2)
    result = reconciled(
        [(source(1), None), (source(2), second)],
        [report_row(first), report_row(second)],
    )
    assert dict(result.counts) == {"source_only": 1, "matched": 1}
    [finding] = result.findings
    assert (finding.kind, finding.seq, finding.source_file, finding.row) == (
        "source_only",
        1,
        "tape.csv",
        1,
    )


def test_report_rows_and_projected_facts_without_a_source_are_downstream_only() -> None:
    loan = projected(1)
    result = reconciled(
        [(source(1), loan), (None, projected(7))],
        [report_row(loan), report_row(projected(9))],
    )
    assert dict(result.counts) == {"matched": 1, "downstream_only": 2}
    assert {finding.locator for finding in result.findings} == {
        "projected/7",
        "report/purchase_tape/3",
    }


def test_a_missing_report_row_is_a_mismatch() -> None:
    result = reconciled([(source(1), projected(1))], [])
    [diff] = result.findings[0].fields
    assert (diff.field, diff.where) == ("report_row", "purchase_tape")


def test_report_cells_guard_text_but_never_a_parsed_number() -> None:
    assert report_cell("seller_loan_number", "=SUM(1)", False) == "'=SUM(1)"
    assert report_cell("note_rate", "-1.5", False) == "-1.5"
    assert report_cell("loan_amount", "-$5", True) == "'-$5"
    assert report_cell("dti_ratio", None, False) == ""
