"""Dispositions, run totals and the exception summary (SPEC §3.6-3.8); the fold of a batch of
review events onto its cases (SPEC §8)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from contracts.balance import add_to_balance
from contracts.loans import Disposition
from contracts.numbers import finite_decimal
from contracts.review_fold import CaseState, ReviewError, evolve
from contracts.reviews import (
    AnyReviewEvent,
    AutoDecisionsRecorded,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
)
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


# What a folded review event does to the decisions table, in log order.
DecisionWrite = (
    AutoDecisionsRecorded | ReviewDecisionRecorded | ReviewOverrideApproved | ReviewOverrideRejected
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A review event the case fold refuses (the gateway's refuses it too): it never happened."""

    event: ReviewEvent
    why: str


@dataclass(slots=True)
class ReviewFold:
    """A batch of review events folded onto its cases' states.

    `cases`: each touched case's first event of the batch (whose run and loan name a new row) and
    its state after the batch's last accepted event; `writes`: the accepted events that change a
    decision, in log order; `refused`: the events the fold refused.
    """

    cases: dict[UUID, tuple[ReviewEvent, CaseState]] = field(default_factory=dict)
    writes: list[DecisionWrite] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def fold_reviews(states: Mapping[UUID, CaseState], events: Iterable[AnyReviewEvent]) -> ReviewFold:
    """Fold `events` in log order onto `states` (the stored states of their cases): a case's
    events of one batch fold one after the other, exactly as one at a time would."""
    folded = ReviewFold()
    for event in events:
        if isinstance(event, AutoDecisionsRecorded):
            folded.writes.append(event)
            continue
        seen = folded.cases.get(event.case_id)
        before = states.get(event.case_id) if seen is None else seen[1]
        try:
            after = evolve(before, event)
        except ReviewError as error:
            folded.refused.append(Refusal(event, str(error)))
            continue
        folded.cases[event.case_id] = (event if seen is None else seen[0], after)
        if isinstance(
            event, ReviewDecisionRecorded | ReviewOverrideApproved | ReviewOverrideRejected
        ):
            folded.writes.append(event)
    return folded
