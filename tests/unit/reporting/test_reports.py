import csv
import io
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import wire
from contracts.codec import decode, encode
from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS, LoanDispositioned, Pricing
from services.reporting.reports import (
    LOAN_COLUMNS,
    ReportWriter,
    guard,
    loan_cells,
    plain_row,
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


# Plain cells, then a character that matters to csv or to the formula guard put at the start or
# inside of a few of them (loans with many such cells would never take the plain path).
PLAIN = st.text(alphabet="0.5aZü' ", max_size=5)
SPECIAL = st.sampled_from(list(',"\r\n=+-@\t'))
TOUCHES = st.lists(
    st.tuples(st.integers(0, len(LOAN_FIELDS) + 1), SPECIAL, st.booleans()), max_size=2
)


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(st.none() | PLAIN, min_size=len(LOAN_FIELDS), max_size=len(LOAN_FIELDS)),
    pricing=st.none() | st.tuples(PLAIN, PLAIN),
    touches=TOUCHES,
    invalid=st.sets(st.sampled_from(NUMERIC_FIELDS)),
    disposition=st.sampled_from(["to_purchase", "projected"]),
)
def test_a_loan_rendered_without_csv_writer_is_written_as_csv_writer_writes_its_cells(
    values: list[str | None],
    pricing: tuple[str, str] | None,
    touches: list[tuple[int, str, bool]],
    invalid: set[str],
    disposition: str,
) -> None:
    cells = [*values, *(pricing or (None, None))]
    for at, special, first in touches:
        text = cells[at] or ""
        cells[at] = special + text if first else text[:1] + special + text[1:]
    spread, final = cells[len(LOAN_FIELDS) :]
    loan = loan_dispositioned(
        loan_record(invalid=sorted(invalid), **dict(zip(LOAN_FIELDS, cells, strict=False))),
        pricing=None if pricing is None else Pricing(pricing_spread=spread, final_price=final),
        disposition=disposition,  # type: ignore[arg-type]
    )
    written = io.StringIO()
    csv.writer(written).writerow(loan_cells(loan))
    for form in (loan, decode(encode(loan), wire.LoanDispositioned)):
        assert render_all([form])[0].text == written.getvalue()
        assert plain_row(form) in (None, written.getvalue())


def test_most_loans_are_rendered_without_csv_writer_and_the_others_with_it() -> None:
    assert plain_row(loan_dispositioned(loan_record(note_rate=None))) is not None
    assert plain_row(loan_dispositioned(loan_record(seller_loan_number="Müller, 1"))) is None
    assert plain_row(loan_dispositioned(loan_record(dti_ratio="-0.5"))) is None
