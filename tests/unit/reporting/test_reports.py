import csv
import io
from uuid import UUID

import pytest

from contracts.loans import LoanDispositioned, Pricing
from services.reporting.reports import (
    LOAN_COLUMNS,
    ReportWriter,
    guard,
    render,
    render_all,
    write_reports,
)
from tests.factories import (
    RUN_ID,
    loan_dispositioned,
    loan_exception,
    loan_record,
    process_loan,
    report_sinks,
)

HEADER = (
    "seller_loan_number,loan_amount,note_rate,ltv_ratio,dti_ratio,credit_score,property_type,"
    "occupancy_status,loan_purpose,purchase_price,appraisal_value,disposition,pricing_spread,"
    "final_price"
)
SOFT = loan_exception(
    "missing_appraisal",
    category="data_quality",
    severity="soft",
    message="Appraisal value is missing or zero",
    rejection_criteria="notebook.appraisal_missing",
)


def reports(*loans: LoanDispositioned) -> dict[str, str]:
    sinks = report_sinks()
    write_reports(loans, sinks)
    return {key: sink.getvalue().decode("utf-8") for key, sink in sinks.items()}


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


def test_every_report_has_its_header_even_when_empty() -> None:
    written = reports()
    assert written["purchase_tape"] == HEADER + "\r\n"
    assert written["projected_tape"] == HEADER + "\r\n"
    assert written["rejection_report"] == (
        HEADER + ",exception_type,severity,message,rejection_criteria\r\n"
    )
    assert written["exception_summary"] == (
        "exception_type,exception_category,severity,count,rejection_criteria,sample_message\r\n"
    )


def test_a_priced_loan_is_one_purchase_row_with_its_canonical_numbers() -> None:
    loan = loan_dispositioned(pricing=Pricing(pricing_spread="-0.2640", final_price="99.3400"))
    assert reports(loan)["purchase_tape"] == (
        HEADER + "\r\n"
        "LN0000001,250000,7.786,80.00,35.0,720,SFR,Primary,Purchase,312500,315000,"
        "to_purchase,-0.2640,99.3400\r\n"
    )


def test_a_projected_loan_has_empty_pricing_cells() -> None:
    loan = loan_dispositioned(loan_record(note_rate="0.99"), disposition="projected")
    assert rows(reports(loan)["projected_tape"])[0][-3:] == ["projected", "", ""]


def test_missing_values_are_empty_cells() -> None:
    loan = loan_dispositioned(loan_record(dti_ratio=None, loan_purpose=None))
    row = dict(zip(LOAN_COLUMNS, rows(reports(loan)["purchase_tape"])[0], strict=True))
    assert (row["dti_ratio"], row["loan_purpose"]) == ("", "")


def test_a_rejected_loan_has_one_row_per_exception_soft_ones_included() -> None:
    hard = loan_exception()
    loan = loan_dispositioned(exceptions=[hard, SOFT], disposition="rejected")
    written = reports(loan)
    assert [row[-4:] for row in rows(written["rejection_report"])] == [
        ["dti_ratio", "hard", "DTI ratio exceeds maximum of 50%", "notebook.dti_exceeds_maximum"],
        ["missing_appraisal", "soft", SOFT.message, "notebook.appraisal_missing"],
    ]
    assert rows(written["purchase_tape"]) == rows(written["projected_tape"]) == []


def test_the_summary_counts_exceptions_of_every_loan() -> None:
    written = reports(
        loan_dispositioned(loan_record(seq=1), exceptions=[SOFT]),
        loan_dispositioned(
            loan_record(seq=2), exceptions=[loan_exception(), SOFT], disposition="rejected"
        ),
    )
    assert rows(written["exception_summary"]) == [
        [
            "missing_appraisal",
            "data_quality",
            "soft",
            "2",
            "notebook.appraisal_missing",
            SOFT.message,
        ],
        [
            "dti_ratio",
            "credit",
            "hard",
            "1",
            "notebook.dti_exceeds_maximum",
            loan_exception().message,
        ],
    ]


def test_finish_returns_the_data_rows_of_each_report() -> None:
    sinks = report_sinks()
    writer = ReportWriter(sinks)
    writer.add(loan_dispositioned(loan_record(seq=1)))
    writer.add(
        loan_dispositioned(
            loan_record(seq=2), exceptions=[loan_exception(), SOFT], disposition="rejected"
        )
    )
    assert writer.finish() == {
        "purchase_tape": 1,
        "projected_tape": 0,
        "rejection_report": 2,
        "exception_summary": 2,
    }


@pytest.mark.parametrize(
    ("seller_loan_number", "written"),
    [
        ('=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'),
        ("+1", "'+1"),
        ("-L-9", "'-L-9"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("L-1", "L-1"),
    ],
)
def test_text_a_spreadsheet_would_run_is_prefixed(seller_loan_number: str, written: str) -> None:
    loan = loan_dispositioned(loan_record(seller_loan_number=seller_loan_number))
    assert reports(loan)["purchase_tape"].split("\r\n")[1].startswith(written + ",")


@pytest.mark.parametrize("text", ["\tx", "\rx", "=1", "+1", "-1", "@x"])
def test_guard_prefixes_every_formula_start(text: str) -> None:
    assert guard(text) == "'" + text


def test_a_parsed_negative_number_is_never_altered() -> None:
    loan = loan_dispositioned(loan_record(dti_ratio="-0.5"))
    row = dict(zip(LOAN_COLUMNS, rows(reports(loan)["purchase_tape"])[0], strict=True))
    assert row["dti_ratio"] == "-0.5"


def test_an_invalid_numeric_value_is_written_as_its_text_and_guarded() -> None:
    loan = process_loan(
        loan_record(loan_amount="-$5", dti_ratio="1_000", invalid=("loan_amount", "dti_ratio"))
    )
    row = rows(reports(loan)["rejection_report"])[0]
    assert (row[1], row[4]) == ("'-$5", "1_000")


def test_an_enumerated_value_that_looks_like_a_formula_is_guarded() -> None:
    loan = process_loan(loan_record(property_type="=cmd|' /C calc'!A0"))
    assert rows(reports(loan)["rejection_report"])[0][6] == "'=cmd|' /C calc'!A0"


def test_reports_are_utf8_with_crlf_and_quote_only_when_needed() -> None:
    loan = loan_dispositioned(loan_record(seller_loan_number="Müller, 1"))
    line = reports(loan)["purchase_tape"].split("\r\n")[1]
    assert line.startswith('"Müller, 1",250000,')
    sinks = report_sinks()
    write_reports([loan], sinks)
    assert "Müller".encode() in sinks["purchase_tape"].getvalue()


def test_loans_out_of_tape_order_are_refused() -> None:
    writer = ReportWriter(report_sinks())
    writer.add(loan_dispositioned(loan_record(seq=2)))
    with pytest.raises(ValueError, match="not tape order"):
        writer.add(loan_dispositioned(loan_record(seq=1)))


def test_loans_of_another_run_are_refused() -> None:
    writer = ReportWriter(report_sinks())
    writer.add(loan_dispositioned(loan_record(seq=1)))
    other = loan_dispositioned(loan_record(seq=2), run_id=UUID(int=RUN_ID.int + 1))
    with pytest.raises(ValueError, match="in the reports of run"):
        writer.add(other)


def test_a_finished_writer_takes_no_more_loans() -> None:
    writer = ReportWriter(report_sinks())
    writer.finish()
    with pytest.raises(ValueError, match="finished"):
        writer.add(loan_dispositioned())
    with pytest.raises(ValueError, match="finished"):
        writer.finish()


def test_every_report_needs_a_sink() -> None:
    sinks = report_sinks()
    del sinks["exception_summary"]
    with pytest.raises(ValueError, match="exception_summary"):
        ReportWriter(sinks)


def test_a_batch_rendered_through_one_writer_is_each_loan_rendered_alone() -> None:
    loans = [
        loan_dispositioned(loan_record(seq=1, seller_loan_number="Müller, 1")),
        loan_dispositioned(
            loan_record(seq=2), exceptions=[loan_exception(), SOFT], disposition="rejected"
        ),
        process_loan(loan_record(seq=3, property_type="=cmd", dti_ratio="-0.5")),
        loan_dispositioned(loan_record(seq=4, note_rate=None), disposition="projected"),
    ]
    together = render_all(loans)
    assert together == [render(loan) for loan in loans]
    assert [loan.text.count("\r\n") for loan in together] == [1, 2, 1, 1]
