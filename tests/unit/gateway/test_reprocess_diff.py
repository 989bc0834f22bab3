"""A child run's outcome diff against its parent, matched by source file and row (SPEC §7)."""

from uuid import UUID, uuid5

from services.gateway.reprocess.diff import Outcome, diff

PARENT, CHILD = UUID(int=1), UUID(int=2)


def outcome(
    run: UUID,
    row: int,
    disposition: str = "to_purchase",
    price: str | None = "99.3400",
    exceptions: tuple[str, ...] = (),
) -> Outcome:
    return Outcome(uuid5(run, str(row)), "t.csv", row, f"L-{row}", disposition, price, exceptions)


def test_an_identical_child_has_nothing_changed() -> None:
    found = diff(
        [outcome(CHILD, r) for r in (1, 2)], [outcome(PARENT, r) for r in (1, 2)], partial=False
    )
    assert found.counts == {"changed": 0, "unchanged": 2}
    assert found.changes == []


def test_a_loan_rejected_by_a_stricter_rule_shows_its_transition_and_exception() -> None:
    before = [outcome(PARENT, 1), outcome(PARENT, 2)]
    after = [outcome(CHILD, 1), outcome(CHILD, 2, "rejected", None, ("ltv_ratio",))]
    found = diff(after, before, partial=False)
    assert found.counts == {"changed": 1, "unchanged": 1, "to_purchase->rejected": 1}
    [change] = found.changes
    assert change.after.loan_id == uuid5(CHILD, "2") and change.before is not None
    assert change.before.loan_id == uuid5(PARENT, "2")
    assert (change.exceptions_added, change.exceptions_removed) == (["ltv_ratio"], [])
    assert (change.before.final_price, change.after.final_price) == ("99.3400", None)


def test_a_new_price_alone_is_a_change_without_a_transition() -> None:
    found = diff([outcome(CHILD, 1, price="98.0000")], [outcome(PARENT, 1)], partial=False)
    assert found.counts == {"changed": 1, "unchanged": 0}


def test_a_removed_exception_is_listed() -> None:
    before = [outcome(PARENT, 1, "rejected", None, ("dti_ratio", "missing_appraisal"))]
    after = [outcome(CHILD, 1, "rejected", None, ("dti_ratio",))]
    [change] = diff(after, before, partial=False).changes
    assert change.exceptions_removed == ["missing_appraisal"]


def test_a_partial_child_is_compared_on_its_own_rows_only() -> None:
    before = [outcome(PARENT, r) for r in (1, 2, 3)]
    found = diff([outcome(CHILD, 2)], before, partial=True)
    assert found.counts == {"changed": 0, "unchanged": 1}


def test_a_whole_child_counts_rows_the_parent_lacks_and_rows_it_lacks() -> None:
    found = diff(
        [outcome(CHILD, 1), outcome(CHILD, 9)],
        [outcome(PARENT, 1), outcome(PARENT, 2)],
        partial=False,
    )
    assert found.counts == {"changed": 0, "unchanged": 1, "added": 1, "removed": 1}
