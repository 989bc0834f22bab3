"""SPEC §3.1 normalisation, one test per rule: headers, rows, values, numbers, duplicates."""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import asdict

from contracts.ids import loan_id
from contracts.loans import LOAN_FIELDS
from contracts.wire import LoanRecord, RowRef
from services.ingest.domain import (
    InMemoryDuplicateIndex,
    Normaliser,
    check_tape_columns,
    check_tape_complete,
    is_blank_row,
    is_whole,
    normalise_header,
    normalise_header_name,
    normalise_values,
    parse_number,
    sort_tape_files,
    tape_columns,
)
from services.ingest.errors import ColumnClash, MissingRows, TapeError, UnreadableTape

RUN_ID = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
HEADER = [
    "Seller Loan Number",
    "Loan Amount",
    "Note Rate",
    "LTV Ratio",
    "DTI Ratio",
    "Credit Score",
    "Property Type",
    "Occupancy Status",
    "Loan Purpose",
    "Purchase Price",
    "Appraisal Value",
    "Borrower Name",
]
GOOD = [
    "LN1",
    "250000",
    "6.5",
    "80.00",
    "35.0",
    "720",
    "SFR",
    "Primary",
    "Purchase",
    "312500",
    "320000",
    "Ann Lee",
]


def normalise(*rows: Sequence[str], header: Sequence[str] = HEADER) -> list[LoanRecord]:
    """The loans of one file `tape.csv` made of `header` and `rows`."""
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    return list(normaliser.file("tape.csv", [header, *rows]))


def row(**changes: str) -> list[str]:
    """The good row with some loan fields changed."""
    cells = list(GOOD)
    for name, value in changes.items():
        cells[LOAN_FIELDS.index(name)] = value
    return cells


# Column headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Loan Amount", "loan_amount"),
        ("  LTV Ratio  ", "ltv_ratio"),
        ("Seller-Loan #", "seller_loan"),
        ("__dti__ratio__", "dti_ratio"),
        ("Credit   Score (FICO)", "credit_score_fico"),
        ("Appraisal\tValue", "appraisal_value"),
        ("Prix Évalué", "prix_valu"),
        ("2nd Lien", "2nd_lien"),
    ],
)
def test_headers_are_trimmed_lower_cased_with_runs_of_other_characters_as_one_underscore(
    header: str, name: str
) -> None:
    assert normalise_header_name(header) == name


def test_a_header_that_normalises_to_nothing_names_no_column_and_never_clashes() -> None:
    header = normalise_header(["Loan Amount", "", "***", "  ", "State"], "tape.csv")

    assert header.columns == (("loan_amount", 0), ("state", 4))


def test_cells_under_a_nameless_header_are_ignored() -> None:
    (loan,) = normalise(["LN1", "ignored", "250000"], header=["Seller Loan Number", "--", "Amount"])

    assert loan.extra == {"amount": "250000"}


def test_two_headers_normalising_to_one_name_make_the_file_unusable_and_say_which() -> None:
    with pytest.raises(ColumnClash) as raised:
        normalise(GOOD, header=["Loan Amount", "State", "loan_amount", "LOAN-AMOUNT"])

    message = str(raised.value)
    assert message.startswith("tape.csv: ")
    assert "'Loan Amount', 'loan_amount' and 'LOAN-AMOUNT'" in message
    assert "'loan_amount'" in message
    assert isinstance(raised.value, TapeError)


def test_a_clash_is_found_before_any_row_is_read() -> None:
    def rows() -> Iterator[list[str]]:
        yield ["Loan Amount", "loan amount"]
        raise AssertionError("a row was read before the header was checked")

    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    loans = normaliser.file("tape.csv", rows())

    with pytest.raises(ColumnClash):
        next(loans)


def test_a_file_without_even_a_header_row_is_unreadable() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())

    with pytest.raises(UnreadableTape, match="empty"):
        list(normaliser.file("tape.csv", []))


# Rows -------------------------------------------------------------------------------------------


def test_data_rows_are_numbered_from_one_per_file_without_counting_the_header() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    first = list(
        normaliser.file(
            "a.csv", [HEADER, row(seller_loan_number="A1"), row(seller_loan_number="A2")]
        )
    )
    second = list(normaliser.file("b.csv", [HEADER, row(seller_loan_number="B1")]))

    assert [(loan.source_file, loan.row, loan.seq) for loan in [*first, *second]] == [
        ("a.csv", 1, 1),
        ("a.csv", 2, 2),
        ("b.csv", 1, 3),
    ]


def test_a_row_whose_every_cell_is_empty_or_whitespace_is_skipped_and_takes_no_number() -> None:
    loans = normalise(
        row(seller_loan_number="A"),
        ["", " ", "\t", ""],
        [],
        [" "] * (len(HEADER) + 3),
        row(seller_loan_number="B"),
    )

    assert [(loan.fields.seller_loan_number, loan.row) for loan in loans] == [("A", 1), ("B", 2)]


def test_a_row_with_content_only_beyond_the_header_is_a_loan_with_every_field_missing() -> None:
    (loan,) = normalise([""] * len(HEADER) + ["beyond"])

    assert loan.row == 1
    assert asdict(loan.fields) == dict.fromkeys(LOAN_FIELDS)
    assert loan.extra == {}


def test_a_row_shorter_than_the_header_has_its_missing_cells_empty() -> None:
    (loan,) = normalise(["LN1", "250000", "6.5"])

    assert loan.fields.loan_amount == "250000"
    assert loan.fields.ltv_ratio is None
    assert loan.fields.appraisal_value is None
    assert loan.invalid == ()


def test_cells_beyond_the_header_are_otherwise_ignored() -> None:
    (loan,) = normalise([*GOOD, "surplus", "more"])

    assert loan.extra == {"borrower_name": "Ann Lee"}


def test_loan_id_is_derived_from_run_file_and_row() -> None:
    (loan,) = normalise(GOOD)

    assert loan.loan_id == loan_id(RUN_ID, "tape.csv", 1)


# Values -----------------------------------------------------------------------------------------


def test_text_fields_are_kept_and_written_trimmed() -> None:
    (loan,) = normalise(row(property_type=" condo ", occupancy_status="\tSecond Home\n"))

    assert loan.fields.property_type == "condo"
    assert loan.fields.occupancy_status == "Second Home"


def test_a_value_that_is_empty_after_trimming_is_missing_not_invalid() -> None:
    (loan,) = normalise(row(loan_amount="   ", property_type="\t"))

    assert loan.fields.loan_amount is None
    assert loan.fields.property_type is None
    assert loan.invalid == ()


def test_other_columns_are_kept_as_trimmed_text_under_their_normalised_names() -> None:
    (loan,) = normalise([*GOOD[:11], "  Ann Lee ", " 0042 "], header=[*HEADER, "Branch Code"])

    assert loan.extra == {"borrower_name": "Ann Lee", "branch_code": "0042"}


def test_other_columns_whose_value_is_missing_are_left_out_of_extra() -> None:
    (loan,) = normalise([*GOOD[:11], "  ", ""], header=[*HEADER, "State"])

    assert loan.extra == {}


def test_values_given_as_none_are_missing() -> None:
    values = normalise_values({"seller_loan_number": None, "loan_amount": None, "state": None})

    assert values.fields["seller_loan_number"] is None
    assert values.fields["loan_amount"] is None
    assert values.extra == {}
    assert values.invalid == ()


# Numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("250000", "250000"),
        ("42.10", "42.10"),
        ("$150,000.00", "150000.00"),
        (" $ 200,000 ", "200000"),
        ("1,00,000", "100000"),
        ("6.875%", "6.875"),
        ("$5%", "5"),
        (" 80 % ", "80"),
        ("1e5", "1E+5"),
        ("7.2E+2", "7.2E+2"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+5.5", "5.5"),
        ("-0", "-0"),
        ("$-5", "-5"),
        ("-1.5e-3", "-0.0015"),
    ],
)
def test_a_number_is_read_exactly_and_keeps_its_canonical_text(text: str, canonical: str) -> None:
    number = parse_number(text)

    assert number is not None
    assert str(number) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "-$5",
        "1_000",
        "١٢٣",
        "１２３",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "abc",
        "$",
        "%",
        ",",
        "12..5",
        "1e",
        "e5",
        "$$5",
        "5%%",
        "%5",
        "0x1F",
        "1 000",
        "1e9999999999999999999",
    ],
)
def test_anything_but_the_ascii_number_syntax_is_not_a_number(text: str) -> None:
    assert parse_number(text) is None


def test_only_one_leading_dollar_and_one_trailing_percent_are_removed() -> None:
    assert parse_number("$$100") is None
    assert parse_number("100%%") is None
    assert parse_number("$100%") == Decimal("100")


def test_an_invalid_numeric_field_keeps_its_trimmed_original_text_and_is_named_invalid() -> None:
    (loan,) = normalise(row(loan_amount=" 1_000 ", dti_ratio="NaN", note_rate="-$5"))

    assert loan.fields.loan_amount == "1_000"
    assert loan.fields.note_rate == "-$5"
    assert loan.invalid == ("loan_amount", "note_rate", "dti_ratio")


def test_valid_numeric_fields_hold_their_canonical_text() -> None:
    (loan,) = normalise(row(loan_amount="$150,000.00", ltv_ratio="42.10", note_rate="6.875%"))

    assert loan.fields.loan_amount == "150000.00"
    assert loan.fields.ltv_ratio == "42.10"
    assert loan.fields.note_rate == "6.875"


@pytest.mark.parametrize("score", ["720", "720.0", "7.2E+2", "720.000"])
def test_a_whole_credit_score_is_valid(score: str) -> None:
    (loan,) = normalise(row(credit_score=score))

    assert loan.invalid == ()
    assert loan.fields.credit_score == str(Decimal(score))


@pytest.mark.parametrize("score", ["720.5", "719.999", "6.995e2"])
def test_a_credit_score_with_a_fraction_is_invalid(score: str) -> None:
    (loan,) = normalise(row(credit_score=score))

    assert loan.invalid == ("credit_score",)
    assert loan.fields.credit_score == score


def test_whole_means_no_fractional_part() -> None:
    assert is_whole(Decimal("720.0"))
    assert is_whole(Decimal("1E+3"))
    assert not is_whole(Decimal("720.5"))


def test_text_fields_are_never_parsed_as_numbers() -> None:
    (loan,) = normalise(row(seller_loan_number="1e5", property_type="$5"))

    assert loan.fields.seller_loan_number == "1e5"
    assert loan.fields.property_type == "$5"
    assert loan.invalid == ()


# Run totals -------------------------------------------------------------------------------------


def test_total_balance_is_the_exact_sum_of_every_parsed_loan_amount() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    rows = [
        HEADER,
        row(seller_loan_number="A", loan_amount="0.1"),
        row(seller_loan_number="A", loan_amount="0.2"),  # a duplicate still counts
        row(seller_loan_number="B", loan_amount="abc"),  # invalid: no amount to add
        row(seller_loan_number="C", loan_amount=""),
        row(seller_loan_number="D", loan_amount="1e5"),
        row(seller_loan_number="E", loan_amount="$1,000,000,000,000,000,000,000,000,000,000.01"),
    ]

    list(normaliser.file("tape.csv", rows))

    assert normaliser.total_loans == 6
    # 34 digits: more than the default decimal context would keep
    assert normaliser.total_balance == Decimal("1000000000000000000000000100000.31")
    assert str(normaliser.total_balance) == "1000000000000000000000000100000.31"
    assert normaliser.duplicates == 1


def test_amounts_far_apart_in_size_still_total_exactly() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())

    list(normaliser.file("tape.csv", [HEADER, row(loan_amount="1e150"), row(loan_amount="0.01")]))

    assert str(normaliser.total_balance) == "1" + "0" * 150 + ".01"


@pytest.mark.parametrize("absurd", ["1e999999", "9e999999999999999999"])
def test_an_amount_the_total_cannot_hold_exactly_fails_the_tape_naming_its_row(
    absurd: str,
) -> None:
    # SPEC 3.7: "total_balance = exact sum of every parsed loan_amount": never a rounded total.
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    rows = [HEADER, row(loan_amount="1"), row(loan_amount=absurd), row(loan_amount=absurd)]

    with pytest.raises(UnreadableTape, match=r"^tape.csv: row [23]: the total of loan_amount"):
        list(normaliser.file("tape.csv", rows))


def test_totals_start_at_zero() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())

    assert (normaliser.total_loans, normaliser.total_balance, normaliser.duplicates) == (
        0,
        Decimal(0),
        0,
    )


# Duplicates -------------------------------------------------------------------------------------


def test_a_later_seller_loan_number_is_flagged_as_a_duplicate_of_the_first_occurrence() -> None:
    loans = normalise(
        row(seller_loan_number="E1"),
        row(seller_loan_number="E2"),
        row(seller_loan_number="E1"),
        row(seller_loan_number="E1"),
    )

    first = RowRef(source_file="tape.csv", row=1)
    assert [loan.duplicate_of for loan in loans] == [None, None, first, first]


def test_seller_loan_numbers_are_compared_after_trimming_and_case_sensitively() -> None:
    loans = normalise(
        row(seller_loan_number="E1"),
        row(seller_loan_number=" E1 "),
        row(seller_loan_number="e1"),
    )

    assert [loan.duplicate_of for loan in loans] == [
        None,
        RowRef(source_file="tape.csv", row=1),
        None,
    ]


def test_a_missing_seller_loan_number_is_never_a_duplicate() -> None:
    loans = normalise(row(seller_loan_number=""), row(seller_loan_number="  "))

    assert [loan.duplicate_of for loan in loans] == [None, None]


def test_the_first_occurrence_is_in_tape_order_across_files() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    loans = [
        *normaliser.file("A.csv", [HEADER, row(seller_loan_number="X")]),
        *normaliser.file("b.csv", [HEADER, [], row(seller_loan_number="X")]),
    ]

    assert loans[1].duplicate_of == RowRef(source_file="A.csv", row=1)
    assert loans[1].row == 1


def test_tape_files_are_processed_in_code_point_order_of_their_names() -> None:
    assert sort_tape_files(["b.csv", "a.csv", "Z.csv", "é.csv", "B.xlsx", "a10.csv", "a2.csv"]) == [
        "B.xlsx",
        "Z.csv",
        "a.csv",
        "a10.csv",
        "a2.csv",
        "b.csv",
        "é.csv",
    ]


def test_the_in_memory_index_answers_the_first_ref_even_for_an_equal_ref() -> None:
    index = InMemoryDuplicateIndex()
    ref = RowRef(source_file="tape.csv", row=1)

    assert index.first_seen("E1", ref) is None
    assert index.first_seen("E1", ref) == ref
    assert index.first_seen("E1", RowRef(source_file="tape.csv", row=9)) == ref


# A producer's tape ------------------------------------------------------------------------------


def tape(*rows: tuple[int, dict[str, str | None]]) -> tuple[Normaliser, list[LoanRecord]]:
    """The normaliser and loans of the producer tape `T-1.csv` made of `rows`."""
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    return normaliser, list(normaliser.tape("T-1.csv", rows))


def test_a_producer_tape_row_keeps_the_number_the_producer_gave() -> None:
    _, loans = tape((1, {"seller_loan_number": "A"}), (3, {"seller_loan_number": "B"}))

    assert [(loan.row, loan.seq, loan.loan_id) for loan in loans] == [
        (1, 1, loan_id(RUN_ID, "T-1.csv", 1)),
        (3, 2, loan_id(RUN_ID, "T-1.csv", 3)),
    ]


def test_a_producer_tape_row_whose_values_are_all_empty_is_skipped() -> None:
    _, loans = tape(
        (1, {"seller_loan_number": "A"}),
        (2, {"seller_loan_number": " ", "loan_amount": None, "state": ""}),
        (3, {}),
        (4, {"seller_loan_number": "B"}),
    )

    assert [loan.row for loan in loans] == [1, 4]


def test_producer_column_names_are_normalised_as_a_header_would_be() -> None:
    _, (loan,) = tape(
        (
            1,
            {
                "Seller Loan Number": " L-1 ",
                "loan_amount": "$250,000",
                "Borrower Name": "Ann",
                "#": "x",
            },
        )
    )

    assert loan.fields.seller_loan_number == "L-1"
    assert loan.fields.loan_amount == "250000"
    assert loan.extra == {"borrower_name": "Ann"}


def test_producer_columns_that_clash_across_rows_fail_the_tape() -> None:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    loans = normaliser.tape("T-1.csv", [(1, {"Loan Amount": "1"}), (2, {"loan_amount": "2"})])

    assert next(loans).fields.loan_amount == "1"
    with pytest.raises(ColumnClash, match="'Loan Amount' and 'loan_amount'"):
        next(loans)


def test_a_producer_row_holding_a_nul_character_fails_the_tape_naming_row_and_column() -> None:
    # No report or database column can hold NUL: stored, it would lose the whole batch.
    with pytest.raises(
        UnreadableTape,
        match=r"T-1.csv: row 2, column 'Loan Amount' holds a NUL character, not text",
    ):
        tape((1, {"Loan Amount": "1"}), (2, {"Loan Amount": "1\x000"}))


def test_producer_tape_duplicates_and_totals_work_as_for_files() -> None:
    normaliser, loans = tape(
        (1, {"seller_loan_number": "A", "loan_amount": "100.50"}),
        (2, {"seller_loan_number": "A", "loan_amount": "1e2"}),
    )

    assert loans[1].duplicate_of == RowRef(source_file="T-1.csv", row=1)
    assert normaliser.total_balance == Decimal("200.50")
    assert normaliser.duplicates == 1


def test_tape_columns_are_the_original_names_in_order_of_first_appearance() -> None:
    rows = [(1, {"b": "1", "a": "2"}), (2, {"c": "3", "a": None}), (3, {"d": "", "b": "x"})]

    assert tape_columns(rows) == ["b", "a", "c", "d"]


def test_checking_tape_columns_finds_a_clash_before_any_row_is_normalised() -> None:
    check_tape_columns("T-1.csv", ["Loan Amount", "State", "#"])

    with pytest.raises(ColumnClash, match="T-1.csv"):
        check_tape_columns("T-1.csv", ["Loan Amount", "State", "LOAN_AMOUNT"])


def test_a_tape_whose_rows_all_arrived_is_complete() -> None:
    check_tape_complete("T-1", 3, [3, 1, 2, 2, 7])
    check_tape_complete("T-1", 0, [])


def test_a_tape_missing_rows_fails_with_a_message_naming_them() -> None:
    with pytest.raises(MissingRows) as raised:
        check_tape_complete("T-1", 25, [1, 3, 4])

    error = raised.value
    assert error.missing == (2, *range(5, 26))
    assert str(error) == (
        "tape 'T-1' is incomplete: its end marker says 25 rows but 22 did not arrive "
        "(rows 2, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 12 more)"
    )
    assert isinstance(error, TapeError)


@settings(max_examples=500, deadline=None)
@given(
    text=st.from_regex(
        r"-?[0-9]{0,3}(\.[0-9]{0,9})?([eE][+-]?[0-9])?|[+]?0{0,2}[1-9]?\.?0{0,8}[0-9]?",
        fullmatch=True,
    ).filter(bool)  # an empty cell is a missing value, not a number
)
def test_a_numeric_cell_reads_as_its_exact_decimal_written_canonically_whatever_its_form(
    text: str,
) -> None:
    number = parse_number(text)
    normalised = normalise_values({"note_rate": text, "loan_amount": text, "credit_score": text})
    expected = text if number is None else str(number)
    assert normalised.fields["note_rate"] == expected
    assert normalised.fields["loan_amount"] == expected
    assert normalised.loan_amount == number
    assert ("note_rate" in normalised.invalid) == (number is None)
    whole = number is not None and is_whole(number)
    assert normalised.fields["credit_score"] == (str(number) if whole else text)
    assert ("credit_score" in normalised.invalid) == (not whole)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("0.000001", "0.000001"),
        ("0.0000001", "1E-7"),
        ("0.000000", "0.000000"),
        ("0.0000000", "0E-7"),
        ("-0", "-0"),
        ("-0.50", "-0.50"),
        ("+5", "5"),
        ("007", "7"),
        ("1e3", "1E+3"),
        ("1.", "1"),
        (".5", "0.5"),
        ("12345678901234567890123", "12345678901234567890123"),
    ],
)
def test_a_number_s_text_is_what_its_decimal_writes_at_the_edges_of_the_plain_form(
    text: str, read: str
) -> None:
    assert normalise_values({"note_rate": text}).fields["note_rate"] == read


@pytest.mark.parametrize(
    ("cells", "blank"),
    [
        ([], True),
        (["", "", ""], True),
        ([" ", "\t", "\u00a0", "\u3000", "\r\n"], True),
        (["", " x"], False),
        (["\u200b"], False),  # a zero-width space is no whitespace to str.isspace
        (["", "", "0"], False),
    ],
)
def test_a_row_is_blank_exactly_when_every_cell_is_empty_or_whitespace(
    cells: list[str], blank: bool
) -> None:
    assert is_blank_row(cells) is blank
    assert is_blank_row(cells) is all(not cell or cell.isspace() for cell in cells)
