from uuid import NAMESPACE_DNS, UUID, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.ids import NS, batch_key, event_id, event_ids, loan_id, tape_run_id

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")


def test_namespace_is_uuid5_of_loan_engine_in_the_dns_namespace() -> None:
    assert uuid5(NAMESPACE_DNS, "loan-engine") == NS


def test_loan_id_is_uuid5_of_run_file_and_row() -> None:
    assert loan_id(RUN, "tape.csv", 7) == uuid5(NS, f"{RUN}/tape.csv/7")


def test_a_producer_knows_its_run_id_before_it_pushes() -> None:
    assert tape_run_id("T-2026-11-22-A") == uuid5(NS, "tape:T-2026-11-22-A")


def test_event_ids_are_the_same_on_replay_and_differ_between_facts() -> None:
    loan = loan_id(RUN, "tape.csv", 1)
    assert event_id("loan.priced", RUN, loan) == event_id("loan.priced", RUN, loan)
    assert event_id("loan.priced", RUN, loan) != event_id("loan.evaluated", RUN, loan)


def test_batch_key_is_run_id_and_batch_seq() -> None:
    assert batch_key(RUN, 7) == f"{RUN}:7"


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from(["loan.evaluated", "loan.priced", "loan.dispositioned", "run.x"]),
    run_id=st.uuids(),
    parts=st.lists(st.uuids() | st.integers() | st.text(), min_size=1, max_size=3),
)
def test_event_ids_equal_uuid5_of_the_whole_name_whatever_ids_came_before(
    event_type: str, run_id: UUID, parts: list[object]
) -> None:
    name = f"{event_type}/{run_id}/" + "/".join(str(part) for part in parts)
    assert event_id(event_type, run_id, *parts) == uuid5(NS, name)
    assert event_id(event_type, run_id, *parts).version == 5
    assert str(event_id(event_type, run_id, *parts)) == str(uuid5(NS, name))


@settings(max_examples=200, deadline=None)
@given(
    event_type=st.sampled_from(["loan.evaluated", "loan.priced"]),
    pairs=st.lists(st.tuples(st.sampled_from([RUN, NS]) | st.uuids(), st.uuids()), max_size=20),
)
def test_a_batch_of_event_ids_equals_uuid5_of_each_run_and_key_in_order(
    event_type: str, pairs: list[tuple[UUID, UUID]]
) -> None:
    run_ids, keys = [run for run, _ in pairs], [key for _, key in pairs]
    expected = [uuid5(NS, f"{event_type}/{run}/{key}") for run, key in pairs]
    assert event_ids(event_type, run_ids, keys) == expected
    assert [str(uuid) for uuid in event_ids(event_type, run_ids, keys)] == [
        str(uuid) for uuid in expected
    ]


def test_a_batch_of_event_ids_needs_one_run_id_per_key() -> None:
    with pytest.raises(ValueError, match="one run id per key"):
        event_ids("loan.priced", [RUN], [RUN, NS])
