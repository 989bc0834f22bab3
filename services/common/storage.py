"""Object storage for inputs, outputs and archives: local filesystem (default) or S3 (aioboto3).

Keys are POSIX paths relative to the storage root (`inputs/...`, `outputs/{run_id}/...`,
`archive/{run_id}/input/...`). Every key goes through `safe_key`, so no caller can escape the
root with `..`, absolute paths, backslashes or percent-encoded tricks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote

from services.common.settings import ServiceSettings

CHUNK = 1024 * 1024

PART_SIZE = 8 * 1024 * 1024
"""The size of one part of an S3 multipart upload (S3 wants at least 5 MiB for all but the last):
`S3Storage.put_file` holds one part in memory (two for a moment), whatever the file's size."""


class StorageError(Exception):
    """Base of storage failures."""


class InvalidPath(StorageError, ValueError):
    """A path that would leave its area: `..`, absolute, encoded or control characters."""


class NotFound(StorageError, FileNotFoundError):
    """No object at that key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object in storage."""

    key: str
    size: int
    last_modified: datetime


def safe_key(*parts: str) -> str:
    """Join path parts into a normalised relative key; raise InvalidPath on any escape attempt."""
    segments: list[str] = []
    for part in parts:
        if part is None:
            continue
        text = str(part)
        decoded = unquote(unquote(text))
        if "\\" in decoded or "\x00" in decoded or any(ord(ch) < 32 for ch in decoded):
            raise InvalidPath(f"invalid characters in path {text!r}")
        if decoded.startswith("/") or (len(decoded) > 1 and decoded[1] == ":"):
            raise InvalidPath(f"absolute paths are not allowed: {text!r}")
        for segment in decoded.split("/"):
            if segment in ("", "."):
                continue
            if segment == "..":
                raise InvalidPath(f"'..' is not allowed in paths: {text!r}")
            segments.append(segment)
    return "/".join(segments)


def safe_name(name: str) -> str:
    """A file name that stays one path segment once decoded (`a%2Fb.csv` would become a folder)."""
    key = safe_key(name)
    if not key or "/" in key:
        raise InvalidPath(f"not a plain file name: {name!r}")
    return key


class Storage(Protocol):
    """What services need from object storage."""

    async def put_bytes(self, key: str, data: bytes) -> None: ...
    async def put_file(self, key: str, path: Path) -> None: ...
    async def get_bytes(self, key: str) -> bytes: ...
    def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]: ...
    async def download_to(self, key: str, path: Path) -> None: ...
    async def list(self, prefix: str) -> list[StoredObject]: ...
    async def delete(self, key: str) -> None: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    async def exists(self, key: str) -> bool: ...
    async def copy(self, src: str, dst: str) -> None: ...
    async def stat(self, key: str) -> StoredObject: ...
    async def ping(self) -> None: ...
    def uri(self, key: str) -> str: ...


def sha256_file(path: Path) -> str:
    """Hex sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalStorage:
    """Storage on the local filesystem under `root`; writes are atomic (temp file, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / safe_key(key)).resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidPath(f"path escapes storage: {key!r}")
        return path

    def _stat(self, key: str, path: Path) -> StoredObject:
        info = path.stat()
        return StoredObject(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), lambda tmp: tmp.write_bytes(data))

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(
            self._write, self._path(key), lambda tmp: shutil.copyfile(path, tmp)
        )

    @staticmethod
    def _write(target: Path, fill: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        fill(tmp)
        tmp.replace(target)

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(key)
        return await asyncio.to_thread(path.read_bytes)

    async def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(key)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def download_to(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(key)
        await asyncio.to_thread(shutil.copyfile, source, path)

    async def list(self, prefix: str) -> list[StoredObject]:
        base = self._path(prefix)

        def scan() -> list[StoredObject]:
            if base.is_file():
                return [self._stat(safe_key(prefix), base)]
            if not base.is_dir():
                return []
            found = [
                self._stat(path.relative_to(self.root).as_posix(), path)
                for path in base.rglob("*")
                if path.is_file() and not path.name.endswith(".partial")
            ]
            return sorted(found, key=lambda obj: obj.key)

        return await asyncio.to_thread(scan)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.exists():
            raise NotFound(key)
        await asyncio.to_thread(path.unlink)

    async def delete_prefix(self, prefix: str) -> int:
        objects = await self.list(prefix)
        for obj in objects:
            await asyncio.to_thread(self._path(obj.key).unlink, True)
        return len(objects)

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def copy(self, src: str, dst: str) -> None:
        source = self._path(src)
        if not source.is_file():
            raise NotFound(src)
        await self.put_file(dst, source)

    async def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(key)
        return self._stat(safe_key(key), path)

    async def ping(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def dir_path(self, key: str) -> Path:
        """A local directory for a key prefix (local storage only; used by mkdir)."""
        return self._path(key)


class S3Storage:
    """Storage in one S3 bucket (AWS, MinIO, moto) through aioboto3."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str) -> None:
        import aioboto3

        self.bucket = bucket
        self._session = aioboto3.Session()
        self._client_args = {"endpoint_url": endpoint_url, "region_name": region}

    def _client(self) -> Any:
        return self._session.client("s3", **self._client_args)

    async def put_bytes(self, key: str, data: bytes) -> None:
        async with self._client() as s3:
            await s3.put_object(Bucket=self.bucket, Key=safe_key(key), Body=data)

    async def put_file(self, key: str, path: Path) -> None:
        """Upload a file one part at a time, so its memory is a part or two whatever its size.

        (aioboto3's `upload_file` reads ahead up to 100 parts of 8 MiB while it uploads, so a
        100 MB tape sat in memory whole.) A file of up to one part is a single PUT; a larger one
        a multipart upload, aborted when any part fails (no half object is ever visible).
        """
        clean = safe_key(key)
        async with self._client() as s3:
            with path.open("rb") as handle:
                part = await asyncio.to_thread(handle.read, PART_SIZE)
                if len(part) < PART_SIZE:
                    await s3.put_object(Bucket=self.bucket, Key=clean, Body=part)
                    return
                del part  # read again as the first part: held once, not twice
                handle.seek(0)
                created = await s3.create_multipart_upload(Bucket=self.bucket, Key=clean)
                target = {"Bucket": self.bucket, "Key": clean, "UploadId": created["UploadId"]}
                try:
                    parts = await _upload_parts(s3, target, handle)
                    await s3.complete_multipart_upload(**target, MultipartUpload={"Parts": parts})
                except BaseException:
                    with contextlib.suppress(Exception):
                        await s3.abort_multipart_upload(**target)
                    raise

    async def get_bytes(self, key: str) -> bytes:
        chunks = [chunk async for chunk in self.iter_bytes(key)]
        return b"".join(chunks)

    async def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        async with self._client() as s3:
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=safe_key(key))
            except s3.exceptions.NoSuchKey as exc:
                raise NotFound(key) from exc
            body = response["Body"]
            try:
                async for chunk in body.iter_chunks(chunk_size):
                    yield chunk
            finally:
                body.close()

    async def download_to(self, key: str, path: Path) -> None:
        with path.open("wb") as handle:
            async for chunk in self.iter_bytes(key):
                handle.write(chunk)

    async def list(self, prefix: str) -> list[StoredObject]:
        clean = safe_key(prefix)
        prefix_key = f"{clean}/" if clean else ""
        found: list[StoredObject] = []
        async with self._client() as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix_key):
                for item in page.get("Contents", []):
                    found.append(StoredObject(item["Key"], item["Size"], item["LastModified"]))
        return sorted(found, key=lambda obj: obj.key)

    async def delete(self, key: str) -> None:
        if not await self.exists(key):
            raise NotFound(key)
        async with self._client() as s3:
            await s3.delete_object(Bucket=self.bucket, Key=safe_key(key))

    async def delete_prefix(self, prefix: str) -> int:
        objects = await self.list(prefix)
        async with self._client() as s3:
            for obj in objects:
                await s3.delete_object(Bucket=self.bucket, Key=obj.key)
        return len(objects)

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    async def copy(self, src: str, dst: str) -> None:
        async with self._client() as s3:
            source = {"Bucket": self.bucket, "Key": safe_key(src)}
            await s3.copy_object(Bucket=self.bucket, Key=safe_key(dst), CopySource=source)

    async def stat(self, key: str) -> StoredObject:
        from botocore.exceptions import ClientError

        async with self._client() as s3:
            try:
                head = await s3.head_object(Bucket=self.bucket, Key=safe_key(key))
            except ClientError as exc:
                raise NotFound(key) from exc
        return StoredObject(safe_key(key), head["ContentLength"], head["LastModified"])

    async def ping(self) -> None:
        async with self._client() as s3:
            await s3.head_bucket(Bucket=self.bucket)

    async def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (local MinIO, tests)."""
        from botocore.exceptions import ClientError

        async with self._client() as s3:
            try:
                await s3.head_bucket(Bucket=self.bucket)
            except ClientError:
                await s3.create_bucket(Bucket=self.bucket)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{safe_key(key)}"


def storage_from_settings(settings: ServiceSettings) -> LocalStorage | S3Storage:
    """The storage backend the settings name."""
    if settings.storage_type == "s3":
        return S3Storage(settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region)
    return LocalStorage(settings.storage_root)


async def _upload_parts(s3: Any, target: dict[str, str], handle: BinaryIO) -> list[dict[str, Any]]:
    """Upload the rest of `handle` one PART_SIZE part at a time (one part in memory); the parts'
    list for `complete_multipart_upload`."""
    parts: list[dict[str, Any]] = []
    while part := await asyncio.to_thread(handle.read, PART_SIZE):
        number = len(parts) + 1
        answer = await s3.upload_part(**target, PartNumber=number, Body=part)
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
        del part  # the next part replaces it, not joins it
    return parts
