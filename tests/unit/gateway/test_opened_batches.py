"""The review job's memory of scored batches seen with every case: kept per batch version and per
generation of the read models."""

from types import SimpleNamespace
from uuid import uuid4

from services.gateway.review.jobs import OpenedBatches

RUN = uuid4()


def batch(batch_seq: int, version: str = "100") -> SimpleNamespace:
    return SimpleNamespace(run_id=RUN, batch_seq=batch_seq, version=version)


def test_a_batch_seen_opened_is_not_read_again_until_it_is_written_again() -> None:
    opened = OpenedBatches()
    opened.reset(0)
    listed = [batch(0), batch(1)]
    assert opened.unknown(listed) == listed
    opened.add([batch(0)])
    assert opened.unknown(listed) == [batch(1)]
    rewritten = [batch(0, version="205"), batch(1)]
    assert opened.unknown(rewritten) == rewritten


def test_the_batches_seen_opened_are_forgotten_with_another_generation_or_a_replay() -> None:
    opened = OpenedBatches()
    listed = [batch(0)]
    opened.reset(3)
    opened.add(listed)
    opened.reset(3)
    assert opened.unknown(listed) == []
    opened.reset(4)  # rebuilt since
    assert opened.unknown(listed) == listed
    opened.add(listed)
    opened.reset(None)  # replaying
    opened.reset(4)
    assert opened.unknown(listed) == listed
