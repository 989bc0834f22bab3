"""The zstd level of produced record batches: aiokafka's fixed 3 replaced, values unchanged."""

import random
from collections.abc import Iterator

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from services.common.kafka import use_zstd_level
from services.common.settings import ServiceSettings

ZSTD = 4  # aiokafka's codec id
RECORD_BATCH_HEADER = 61  # bytes before the (compressed) records of a v2 record batch
_random = random.Random(11)
# Loan-like JSON: repetitive keys, varied values (zstd's levels differ on it, as on loan batches).
VALUE = b",".join(
    f'{{"loan_id":"{_random.getrandbits(128):032x}","note_rate":"{_random.randint(1, 999) / 100}",'
    f'"state":"{_random.choice(["CA", "TX", "NY", "FL"])}"}}'.encode()
    for _ in range(2000)
)


@pytest.fixture(autouse=True)
def default_level() -> Iterator[None]:
    yield
    use_zstd_level(ServiceSettings().kafka_zstd_level)


def record_batch() -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=ZSTD,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1024 * 1024,
    )
    builder.append(0, timestamp=None, key=b"run:0", value=VALUE, headers=[])
    return bytes(builder.build())


def test_a_record_batch_is_compressed_at_the_level_set_and_its_value_is_unchanged() -> None:
    sizes = {}
    for level in (1, 3, 19):
        use_zstd_level(level)
        batch = record_batch()
        sizes[level] = len(batch)
        records = MemoryRecords(batch).next_batch()
        assert records is not None
        assert [record.value for record in records] == [VALUE]
    assert len(set(sizes.values())) == 3
    # Each batch holds the records compressed as zstd does at its level.
    for level, size in sizes.items():
        compressed = cramjam.zstd.compress(record_payload(), level=level)
        assert size == RECORD_BATCH_HEADER + len(compressed)


def record_payload() -> bytes:
    """The uncompressed records section of the batch (what aiokafka compresses)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1024 * 1024,
    )
    builder.append(0, timestamp=None, key=b"run:0", value=VALUE, headers=[])
    return bytes(builder.build())[RECORD_BATCH_HEADER:]


def test_the_zstd_level_is_read_from_the_environment_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_ZSTD_LEVEL", "7")
    assert ServiceSettings().kafka_zstd_level == 7
    monkeypatch.setenv("KAFKA_ZSTD_LEVEL", "40")
    with pytest.raises(ValueError, match="KAFKA_ZSTD_LEVEL"):
        ServiceSettings()
