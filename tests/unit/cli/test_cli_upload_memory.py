"""`loan-engine run FILES` uploads a tape without holding it in memory (issue 11: every process's
peak memory flat from 100k to 1M loans).

Python's allocations are traced while a tape several times the allowed peak is uploaded: reading
the tape whole (or aioboto3's `upload_file`, which reads up to 100 parts of 8 MiB ahead) makes
the traced peak the tape's size and fails these tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3  # noqa: F401  (imported here: its import's allocations are not the upload's)
import pytest

from services.cli.client import CliSettings
from services.cli.pipeline import upload
from services.common.storage import PART_SIZE, S3Storage

MIB = 1024 * 1024


def write_tape(path: Path, size: int) -> str:
    """A file of `size` bytes, each MiB different (a part sent twice or out of order shows in the
    digest); its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for index in range(0, size, MIB):
            block = bytes([index // MIB % 251]) * min(MIB, size - index)
            handle.write(block)
            digest.update(block)
    return digest.hexdigest()


def traced_peak(work: Any) -> int:
    """The peak of Python's traced allocations while `work` runs to its end."""
    tracemalloc.start()
    try:
        asyncio.run(work)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class FakeS3:
    """An S3 client that keeps nothing of what it receives but its size, order and digest."""

    fail_at_part: int | None = None
    objects: list[tuple[str, str]] = field(default_factory=list)
    """(bucket, key) of every PUT and multipart upload begun."""
    puts: list[int] = field(default_factory=list)
    parts: list[tuple[int, int]] = field(default_factory=list)
    completed: list[dict[str, Any]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)

    async def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects.append((Bucket, Key))
        self.puts.append(len(Body))
        self.digest.update(Body)

    async def create_multipart_upload(self, *, Bucket: str, Key: str) -> dict[str, str]:  # noqa: N803
        self.objects.append((Bucket, Key))
        return {"UploadId": "upload-1"}

    async def upload_part(self, *, PartNumber: int, Body: bytes, **_: Any) -> dict[str, str]:  # noqa: N803
        if PartNumber == self.fail_at_part:
            raise ConnectionResetError("the connection broke")
        self.parts.append((PartNumber, len(Body)))
        self.digest.update(Body)
        return {"ETag": f'"etag-{PartNumber}"'}

    async def complete_multipart_upload(self, *, MultipartUpload: dict[str, Any], **_: Any) -> None:  # noqa: N803
        self.completed.append(MultipartUpload)

    async def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> None:  # noqa: N803
        self.aborted.append(UploadId)


@pytest.fixture
def fake_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeS3]:
    fake = FakeS3()

    @asynccontextmanager
    async def client(_self: S3Storage) -> AsyncIterator[FakeS3]:
        yield fake

    monkeypatch.setattr(S3Storage, "_client", client)
    yield fake


def s3_settings() -> CliSettings:
    return CliSettings(_env_file=None, storage_type="s3", s3_bucket="tapes")  # type: ignore[call-arg]


def test_uploading_a_tape_to_local_storage_never_holds_it_in_memory(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    expected = write_tape(tape, 48 * MIB)
    settings = CliSettings(_env_file=None, storage_type="local", storage_root=tmp_path / "store")  # type: ignore[call-arg]

    peak = traced_peak(upload(settings, [tape], "folder"))

    stored = tmp_path / "store" / "inputs" / "folder" / "tape.csv"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == expected
    assert peak < 4 * MIB, f"uploading a 48 MiB tape peaked at {peak / MIB:.1f} MiB"


def test_uploading_a_tape_to_s3_sends_it_one_bounded_part_at_a_time(
    tmp_path: Path, fake_s3: FakeS3
) -> None:
    tape = tmp_path / "tape.csv"
    size = 6 * PART_SIZE + PART_SIZE // 2
    expected = write_tape(tape, size)

    peak = traced_peak(upload(s3_settings(), [tape], "folder"))

    numbers = range(1, 8)
    assert fake_s3.parts == [(n, PART_SIZE) for n in numbers[:-1]] + [(7, PART_SIZE // 2)]
    assert fake_s3.completed == [
        {"Parts": [{"ETag": f'"etag-{n}"', "PartNumber": n} for n in numbers]}
    ]
    assert fake_s3.digest.hexdigest() == expected and fake_s3.puts == []
    assert fake_s3.objects == [("tapes", "inputs/folder/tape.csv")]
    # One part, and for a moment the one before it (the reading thread lets go of it late).
    assert peak < 3 * PART_SIZE, f"a {size / MIB:.0f} MiB tape peaked at {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("size", [0, 1, PART_SIZE - 1])
def test_a_tape_of_at_most_one_part_is_one_put(tmp_path: Path, fake_s3: FakeS3, size: int) -> None:
    tape = tmp_path / "tape.csv"
    expected = write_tape(tape, size)

    asyncio.run(upload(s3_settings(), [tape], "folder"))

    assert fake_s3.puts == [size] and fake_s3.parts == []
    assert fake_s3.objects == [("tapes", "inputs/folder/tape.csv")]
    assert fake_s3.digest.hexdigest() == expected


def test_a_tape_of_exactly_one_part_is_a_one_part_upload(tmp_path: Path, fake_s3: FakeS3) -> None:
    tape = tmp_path / "tape.csv"
    write_tape(tape, PART_SIZE)

    asyncio.run(upload(s3_settings(), [tape], "folder"))

    assert fake_s3.parts == [(1, PART_SIZE)] and len(fake_s3.completed) == 1


def test_a_part_that_fails_aborts_the_upload_and_says_why(tmp_path: Path, fake_s3: FakeS3) -> None:
    tape = tmp_path / "tape.csv"
    write_tape(tape, 2 * PART_SIZE + 1)
    fake_s3.fail_at_part = 2

    with pytest.raises(ConnectionResetError, match="broke"):
        asyncio.run(upload(s3_settings(), [tape], "folder"))

    assert fake_s3.aborted == ["upload-1"] and fake_s3.completed == []


def test_the_part_size_is_one_s3_accepts() -> None:
    # S3 refuses parts under 5 MiB but the last one.
    assert PART_SIZE >= 5 * MIB
