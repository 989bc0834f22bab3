"""The files API over the storage `inputs` area (SPEC §6), each user inside their own root.

Admins and analysts see `inputs/`; a sales-team user sees `inputs/teams/{team}/` as its root.
Every path goes through `safe_key`, so `..`, absolute and encoded paths answer 400.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

from fastapi import UploadFile

from services.common.storage import InvalidPath, Storage, StoredObject, safe_key, safe_name
from services.gateway.errors import BadRequest, NotFound, PayloadTooLarge
from services.gateway.files.schemas import FileEntry, FileListResponse
from services.gateway.identity.principal import Principal

INPUTS = "inputs"
FOLDER_MARKER = ".keep"
TAPE_SUFFIXES = (".csv", ".xlsx")
COPY_CHUNK = 1024 * 1024
# File systems refuse longer names (NAME_MAX) and S3 longer keys: refused up front with a 400.
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 1000


def root_of(user: Principal) -> str:
    """The storage key of the user's root folder."""
    if user.team_scope is not None:
        return safe_key(INPUTS, "teams", user.team_scope)
    return INPUTS


def relative_path(path: str) -> str:
    """A clean path relative to a root; 400 for anything that would leave it."""
    try:
        clean = safe_key(path)
    except InvalidPath as error:
        raise BadRequest("Invalid path") from error
    check_length(clean)
    return clean


def check_length(clean: str) -> None:
    """400 naming the limit when a path, or a name in it, is longer than storage keeps."""
    if len(clean.encode()) > PATH_MAX_BYTES:
        raise BadRequest(f"Paths are limited to {PATH_MAX_BYTES} bytes (UTF-8)")
    if any(len(name.encode()) > NAME_MAX_BYTES for name in clean.split("/")):
        raise BadRequest(f"Each name in a path is limited to {NAME_MAX_BYTES} bytes (UTF-8)")


def folder_for_run(user: Principal, folder: str) -> str:
    """The folder a run request names, relative to `inputs/` (what ingest reads)."""
    clean = relative_path(folder)
    root = root_of(user)
    return safe_key(root, clean)[len(INPUTS) :].lstrip("/")


def _key(user: Principal, path: str) -> str:
    return safe_key(root_of(user), relative_path(path))


def _visible(name: str) -> bool:
    return not name.startswith(".")


async def list_folder(storage: Storage, user: Principal, path: str) -> FileListResponse:
    """The files and folders directly inside `path`."""
    clean = relative_path(path)
    key = _key(user, clean)
    objects = await storage.list(key)
    if objects and len(objects) == 1 and objects[0].key == key:
        raise BadRequest("Path is a file, not a folder")
    if not objects and clean:
        raise NotFound("Folder not found")
    return FileListResponse(path=clean, entries=_children(objects, key, clean))


def _children(objects: list[StoredObject], key: str, clean: str) -> list[FileEntry]:
    prefix = f"{key}/"
    folders: dict[str, FileEntry] = {}
    files: list[FileEntry] = []
    for obj in objects:
        rest = obj.key[len(prefix) :] if obj.key.startswith(prefix) else obj.key
        head, _, tail = rest.partition("/")
        entry_path = f"{clean}/{head}" if clean else head
        if tail:
            if _visible(head):
                folders.setdefault(head, FileEntry(name=head, path=entry_path, type="directory"))
        elif _visible(head):
            files.append(
                FileEntry(
                    name=head,
                    path=entry_path,
                    type="file",
                    size=obj.size,
                    last_modified=obj.last_modified,
                )
            )
    return sorted(folders.values(), key=lambda e: e.name) + sorted(files, key=lambda e: e.name)


def _upload_name(filename: str | None) -> str:
    name = PurePosixPath((filename or "").replace("\\", "/")).name.strip()
    if not name or name.startswith(".") or not _visible(name):
        raise BadRequest("The upload needs a file name")
    if not name.lower().endswith(TAPE_SUFFIXES):
        raise BadRequest("Only .csv and .xlsx tapes can be uploaded")
    try:
        clean = safe_name(name)
    except InvalidPath as error:
        raise BadRequest("Invalid file name") from error
    check_length(clean)
    return clean


async def _require_folders(storage: Storage, user: Principal, clean: str) -> None:
    """400 when a file stands where `clean` or one of its parents must be a folder."""
    parts = PurePosixPath(clean).parts
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if await storage.exists(_key(user, folder)):
            raise BadRequest(f"'{folder}' is a file, not a folder")


async def _require_no_folder(storage: Storage, key: str, path: str) -> None:
    """400 when a folder already holds the name a file is to take."""
    if await storage.list(f"{key}/"):
        raise BadRequest(f"'{path}' is a folder")


async def upload(
    storage: Storage, user: Principal, folder: str, file: UploadFile, max_bytes: int
) -> FileEntry:
    """Store an uploaded tape in `folder`; 413 when it is larger than `max_bytes`."""
    clean = relative_path(folder)
    name = _upload_name(file.filename)
    handle, temp_name = tempfile.mkstemp(prefix="upload-", suffix=Path(name).suffix)
    temp = Path(temp_name)
    try:
        size = 0
        with os.fdopen(handle, "wb") as out:
            while chunk := await file.read(COPY_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"Uploads are limited to {max_bytes} bytes")
                out.write(chunk)
        path = f"{clean}/{name}" if clean else name
        key = safe_key(root_of(user), path)
        await _require_folders(storage, user, clean)
        await _require_no_folder(storage, key, path)
        await storage.put_file(key, temp)
        stored = await storage.stat(key)
    finally:
        temp.unlink(missing_ok=True)
    return FileEntry(
        name=name, path=path, type="file", size=stored.size, last_modified=stored.last_modified
    )


async def file_key(storage: Storage, user: Principal, path: str) -> tuple[str, StoredObject]:
    """The storage key and metadata of a file to download; 404 if it is not there."""
    clean = relative_path(path)
    if not clean:
        raise BadRequest("Name a file to download")
    key = _key(user, clean)
    if not await storage.exists(key):
        raise NotFound("File not found")
    return key, await storage.stat(key)


async def make_folder(storage: Storage, user: Principal, path: str) -> FileEntry:
    """Create a folder (a hidden marker object, so it exists on S3 too)."""
    clean = relative_path(path)
    if not clean:
        raise BadRequest("Name the folder to create")
    key = _key(user, clean)
    await _require_folders(storage, user, clean)
    marker = safe_key(key, FOLDER_MARKER)
    if not await storage.exists(marker):
        await storage.put_bytes(marker, b"")
    return FileEntry(name=PurePosixPath(clean).name, path=clean, type="directory")


async def delete_path(storage: Storage, user: Principal, path: str) -> int:
    """Delete a file, or a folder with everything in it; how many objects went."""
    clean = relative_path(path)
    if not clean:
        raise BadRequest("The root folder cannot be deleted")
    key = _key(user, clean)
    if await storage.exists(key):
        await storage.delete(key)
        return 1
    removed = await storage.delete_prefix(key)
    if removed == 0:
        raise NotFound("Path not found")
    return removed
