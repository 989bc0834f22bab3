"""Both storage backends behave the same: local files and S3 (a real S3 server, moto)."""

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from services.common.storage import (
    PART_SIZE,
    InvalidPath,
    LocalStorage,
    NotFound,
    S3Storage,
    Storage,
    safe_key,
    safe_name,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "storage")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3Storage(f"bucket-{uuid4().hex[:8]}", endpoint, "us-east-1")
    await s3.ensure_bucket()
    yield s3


async def test_an_object_reads_back_whole_and_in_chunks(storage: Storage) -> None:
    data = bytes(range(256)) * 9000
    await storage.put_bytes("inputs/a/tape.csv", data)
    assert await storage.get_bytes("inputs/a/tape.csv") == data
    chunks = [chunk async for chunk in storage.iter_bytes("inputs/a/tape.csv", chunk_size=65536)]
    assert b"".join(chunks) == data
    assert len(chunks) > 1


async def test_a_file_of_several_parts_uploads_whole_and_in_order(
    storage: Storage, tmp_path: Path
) -> None:
    # S3 takes it as a multipart upload of PART_SIZE parts, the last one shorter.
    source = tmp_path / "tape.csv"
    data = b"".join(bytes([n]) * (PART_SIZE // 2) for n in range(5)) + b"tail"
    source.write_bytes(data)
    await storage.put_file("inputs/big/tape.csv", source)
    assert (await storage.stat("inputs/big/tape.csv")).size == len(data)
    assert await storage.get_bytes("inputs/big/tape.csv") == data


async def test_listing_is_by_prefix_sorted_with_sizes(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "upload.csv"
    source.write_bytes(b"x" * 10)
    await storage.put_file("archive/r1/input/b.csv", source)
    await storage.put_bytes("archive/r1/input/a.csv", b"abc")
    await storage.put_bytes("archive/r2/input/c.csv", b"c")
    listed = await storage.list("archive/r1")
    assert [(obj.key, obj.size) for obj in listed] == [
        ("archive/r1/input/a.csv", 3),
        ("archive/r1/input/b.csv", 10),
    ]
    assert await storage.list("archive/none") == []


async def test_copy_stat_download_and_delete(storage: Storage, tmp_path: Path) -> None:
    await storage.put_bytes("outputs/r/purchase_tape.csv", b"report")
    await storage.copy("outputs/r/purchase_tape.csv", "archive/r/output/purchase_tape.csv")
    assert (await storage.stat("archive/r/output/purchase_tape.csv")).size == 6
    target = tmp_path / "down.csv"
    await storage.download_to("archive/r/output/purchase_tape.csv", target)
    assert target.read_bytes() == b"report"
    await storage.delete("outputs/r/purchase_tape.csv")
    assert not await storage.exists("outputs/r/purchase_tape.csv")
    with pytest.raises(NotFound):
        await storage.get_bytes("outputs/r/purchase_tape.csv")
    assert await storage.delete_prefix("archive/r") == 1


async def test_uri_is_an_absolute_path_or_an_s3_uri(storage: Storage) -> None:
    uri = storage.uri("outputs/r/x.csv")
    assert uri.startswith("s3://") or Path(uri).is_absolute()
    assert uri.endswith("outputs/r/x.csv")


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "/etc/passwd", "a/../../b", "%2e%2e/secret", "%252e%252e/x", "a\\b", "C:x"],
)
def test_keys_that_would_escape_the_storage_root_are_refused(path: str) -> None:
    with pytest.raises(InvalidPath):
        safe_key("inputs", path)


def test_keys_are_normalised_posix_paths() -> None:
    assert safe_key("inputs", "./team//a/", "b.csv") == "inputs/team/a/b.csv"


@pytest.mark.parametrize("name", ["a%2Fb.csv", "a%252Fb.csv", "a/b.csv", "", ".", "%2e"])
def test_a_file_name_that_is_not_one_segment_once_decoded_is_refused(name: str) -> None:
    with pytest.raises(InvalidPath):
        safe_name(name)


def test_a_plain_file_name_is_its_own_key() -> None:
    assert safe_name("tape 100%.csv") == "tape 100%.csv"
