"""Completion writes the reports from chunks fetched while the previous one is being written:
the same bytes as writing the loans one by one, and a stream that fails mid-run fails the write."""

from collections.abc import AsyncIterator, Sequence

import pytest

from contracts.codec import dumps
from contracts.loans import LoanDispositioned
from services.reporting.domain import RunTotals
from services.reporting.reports import ReportWriter, render, write_reports
from services.reporting.repository import StoredLoan
from services.reporting.service import write_streamed
from tests.factories import loan_dispositioned, loan_exception, loan_record, report_sinks


def run_loans(count: int) -> list[LoanDispositioned]:
    loans = []
    for seq in range(1, count + 1):
        if seq % 3 == 0:
            loans.append(
                loan_dispositioned(
                    loan_record(seq=seq), exceptions=[loan_exception()], disposition="rejected"
                )
            )
        else:
            loans.append(loan_dispositioned(loan_record(seq=seq)))
    return loans


def stored(loan: LoanDispositioned) -> StoredLoan:
    rendered = render(loan)
    exceptions = dumps(rendered.exceptions).decode() if rendered.exceptions else None
    return (rendered.seq, rendered.disposition, rendered.text, exceptions)


async def chunks(
    loans: list[LoanDispositioned], size: int, fail_after: int | None = None
) -> AsyncIterator[Sequence[StoredLoan]]:
    for number, start in enumerate(range(0, len(loans), size)):
        if fail_after is not None and number == fail_after:
            raise ConnectionError("the database went away")
        yield [stored(loan) for loan in loans[start : start + size]]


async def test_streamed_chunks_write_the_same_bytes_as_the_loans_one_by_one() -> None:
    loans = run_loans(25)
    expected = report_sinks()
    write_reports(loans, expected)
    sinks = report_sinks()
    writer, totals = ReportWriter(sinks), RunTotals()
    await write_streamed(chunks(loans, 4), writer, totals)
    writer.finish()
    assert {key: sink.getvalue() for key, sink in sinks.items()} == {
        key: sink.getvalue() for key, sink in expected.items()
    }
    assert totals.total_loans == 25


async def test_a_stream_failing_mid_run_fails_the_write_after_the_chunk_in_hand() -> None:
    loans = run_loans(12)
    writer, totals = ReportWriter(report_sinks()), RunTotals()
    with pytest.raises(ConnectionError):
        await write_streamed(chunks(loans, 4, fail_after=2), writer, totals)
    assert totals.total_loans == 8
