"""The on-disk duplicate index: same answers as the in-memory one, file gone when closed."""

import threading
from pathlib import Path

from contracts.wire import RowRef
from services.ingest.domain import InMemoryDuplicateIndex
from services.ingest.duplicates import SqliteDuplicateIndex


def ref(row: int, source_file: str = "tape.csv") -> RowRef:
    return RowRef(source_file=source_file, row=row)


def test_the_first_occurrence_is_recorded_and_every_later_one_answers_it(tmp_path: Path) -> None:
    with SqliteDuplicateIndex(tmp_path) as index:
        assert index.first_seen("E1", ref(1)) is None
        assert index.first_seen("E2", ref(2)) is None
        assert index.first_seen("E1", ref(3)) == ref(1)
        assert index.first_seen("E1", ref(4)) == ref(1)
        assert len(index) == 2


def test_numbers_written_to_disk_in_earlier_batches_are_still_found(tmp_path: Path) -> None:
    with SqliteDuplicateIndex(tmp_path, batch=3) as index:
        for row in range(1, 11):
            assert index.first_seen(f"N{row}", ref(row, f"file{row % 2}.csv")) is None

        assert index.first_seen("N1", ref(11)) == ref(1, "file1.csv")
        assert index.first_seen("N10", ref(12)) == ref(10, "file0.csv")
        assert len(index) == 10


def test_numbers_that_only_collide_in_the_bloom_filter_are_not_duplicates(tmp_path: Path) -> None:
    # An 8-bit filter says "maybe" for nearly everything, so every lookup goes to the database.
    with SqliteDuplicateIndex(tmp_path, batch=2, bloom_bits_log2=3) as index:
        answers = [index.first_seen(f"N{row % 50}", ref(row)) for row in range(1, 201)]

    assert answers[:49] == [None] * 49
    assert answers[49] is None  # N0 first appears at row 50
    assert answers[50] == ref(1)
    assert answers[199] == ref(50)


def test_it_answers_exactly_like_the_in_memory_index(tmp_path: Path) -> None:
    numbers = [f"L{(row * 7919) % 1_000}" for row in range(1, 3_001)]
    memory = InMemoryDuplicateIndex()

    with SqliteDuplicateIndex(tmp_path, batch=97) as disk:
        for row, number in enumerate(numbers, start=1):
            assert disk.first_seen(number, ref(row)) == memory.first_seen(number, ref(row))


def test_closing_removes_the_file(tmp_path: Path) -> None:
    with SqliteDuplicateIndex(tmp_path) as index:
        index.first_seen("E1", ref(1))
        assert index.path.exists()
        assert index.path.parent == tmp_path

    assert not index.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_removed_even_when_the_block_fails(tmp_path: Path) -> None:
    try:
        with SqliteDuplicateIndex(tmp_path) as index:
            raise RuntimeError("ingest failed")
    except RuntimeError:
        pass

    assert not index.path.exists()


def test_it_may_be_used_from_a_thread_other_than_the_one_that_opened_it(tmp_path: Path) -> None:
    answers: list[RowRef | None] = []
    with SqliteDuplicateIndex(tmp_path, batch=1) as index:
        index.first_seen("E1", ref(1))
        worker = threading.Thread(target=lambda: answers.append(index.first_seen("E1", ref(2))))
        worker.start()
        worker.join()

    assert answers == [ref(1)]
