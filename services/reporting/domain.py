"""Dispositions, run totals and the exception summary (SPEC §3.6-3.8)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from contracts.balance import add_to_balance
from contracts.loans import Disposition
from contracts.numbers import finite_decimal
from contracts.runs import Dispositions
from contracts.wire import LoanDispositioned, LoanException, Pricing

SUMMARY_HEADER = (
    "exception_type",
    "exception_category",
    "severity",
    "count",
    "rejection_criteria",
    "sample_message",
)
SummaryRow = tuple[str, str, str, int, str, str]
# What the summary needs of one exception: type, category, severity, rejection criteria, message.
ExceptionFacts = tuple[str, str, str, str, str]


def disposition(exceptions: Sequence[LoanException], pricing: Pricing | None) -> Disposition:
    """Rejected on any hard exception; else to_purchase when priced; else projected."""
    for exception in exceptions:  # a loop, not any() over a generator: most loans have none
        if exception.severity == "hard":
            return "rejected"
    return "to_purchase" if pricing is not None else "projected"


@dataclass(slots=True)
class RunTotals:
    """A run's facts folded from its dispositioned loans (SPEC §3.7)."""

    total_loans: int = 0
    total_balance: Decimal = field(default_factory=Decimal)
    exceptions_count: int = 0
    to_purchase: int = 0
    projected: int = 0
    rejected: int = 0

    def add(self, loan: LoanDispositioned) -> None:
        """Count one loan: every loan, every exception, every parsed loan_amount."""
        self.count(loan.disposition, len(loan.exceptions))
        amount = _parsed_amount(loan)
        if amount is not None:
            self.total_balance = add_to_balance(self.total_balance, amount)

    def count(self, disposition: Disposition, exceptions: int) -> None:
        """Count one loan by its disposition and number of exceptions (not its balance)."""
        self.total_loans += 1
        self.exceptions_count += exceptions
        match disposition:
            case "to_purchase":
                self.to_purchase += 1
            case "projected":
                self.projected += 1
            case "rejected":
                self.rejected += 1

    def dispositions(self) -> Dispositions:
        """The disposition counts as the run contracts carry them."""
        return Dispositions(
            to_purchase=self.to_purchase, projected=self.projected, rejected=self.rejected
        )


@dataclass(slots=True)
class _Group:
    category: str
    rejection_criteria: str
    sample_message: str
    count: int = 0


class ExceptionSummary:
    """Exceptions grouped by (type, severity); its state is bounded by the exception types."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _Group] = {}

    def add(self, exceptions: Iterable[ExceptionFacts]) -> None:
        """Count exceptions, fed in tape order so each group keeps its first message."""
        for kind, category, severity, criteria, message in exceptions:
            group = self._groups.get((kind, severity))
            if group is None:
                group = _Group(category, criteria, message)
                self._groups[(kind, severity)] = group
            group.count += 1

    def rows(self) -> list[SummaryRow]:
        """Rows in SUMMARY_HEADER order: count descending, then type (and severity) ascending."""
        ordered = sorted(self._groups.items(), key=lambda item: (-item[1].count, item[0]))
        return [
            (
                kind,
                group.category,
                severity,
                group.count,
                group.rejection_criteria,
                group.sample_message,
            )
            for (kind, severity), group in ordered
        ]


def exception_facts(exceptions: Iterable[LoanException]) -> tuple[ExceptionFacts, ...]:
    """What the exception summary needs of each exception."""
    return tuple(
        (
            exception.exception_type,
            exception.category,
            exception.severity,
            exception.rejection_criteria,
            exception.message,
        )
        for exception in exceptions
    )


def exception_summary_rows(exceptions: Iterable[LoanException]) -> list[SummaryRow]:
    """The exception summary of exceptions given in tape order (SPEC §3.8)."""
    summary = ExceptionSummary()
    summary.add(exception_facts(exceptions))
    return summary.rows()


def _parsed_amount(loan: LoanDispositioned) -> Decimal | None:
    """The loan's loan_amount when it parsed (SPEC §3.1), else None."""
    text = loan.loan.fields.loan_amount
    if "loan_amount" in loan.loan.invalid:
        return None
    return finite_decimal(text)
