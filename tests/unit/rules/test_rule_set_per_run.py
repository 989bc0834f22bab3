"""Rules evaluate a batch with the rule-set version its run asks for (SPEC §7 what-if)."""

import pytest

from contracts.loans import IngestedBatch
from services.common.consumer import PermanentMessageError
from services.rules.domain import load_rule_set
from services.rules.handlers import evaluated_batch, rule_set_for
from tests.factories import OCCURRED_AT, RUN_ID, loan_ingested, loan_record, run_params

CURRENT = load_rule_set()


def batch(rule_set_version: str | None, ltv: str = "95") -> IngestedBatch:
    params = run_params().model_copy(update={"rule_set_version": rule_set_version})
    event = loan_ingested(loan_record(ltv_ratio=ltv))
    return IngestedBatch(run_id=RUN_ID, batch_seq=0, params=params, events=(event,))


def test_a_batch_without_a_version_is_evaluated_with_the_workers_rule_set() -> None:
    assert rule_set_for(batch(None), CURRENT) is CURRENT


def test_a_batch_asking_for_the_stricter_version_gets_its_ltv_exception() -> None:
    asked = batch("2026.12.1")
    output = evaluated_batch(asked, rule_set_for(asked, CURRENT), OCCURRED_AT)
    event = output.events[0]
    assert event.rule_set_version == "2026.12.1"
    assert [e.exception_type for e in event.exceptions] == ["ltv_ratio"]
    plain = evaluated_batch(batch(None), CURRENT, OCCURRED_AT).events[0]
    assert (plain.rule_set_version, plain.exceptions) == ("2026.11.1", ())


def test_a_batch_asking_for_a_version_the_worker_lacks_is_a_permanent_error() -> None:
    with pytest.raises(PermanentMessageError, match="1999.1"):
        rule_set_for(batch("1999.1"), CURRENT)
