"""Ingest's storage chores: finding a run's tape files, archiving them, downloading to read."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

from services.common.storage import NotFound, Storage, safe_key
from services.ingest.domain import sort_tape_files
from services.ingest.errors import TapeError
from services.ingest.readers import is_tape_file


def inputs_prefix(folder: str) -> str:
    """The storage prefix of a folder of the `inputs` area (empty folder: the area's root)."""
    return safe_key("inputs", folder)


def archive_input_prefix(run_id: UUID) -> str:
    """Where a run's inputs are archived."""
    return safe_key("archive", str(run_id), "input")


async def tape_files(storage: Storage, prefix: str) -> list[str]:
    """The tape files directly in `prefix` (not below it), by code point; TapeError if none."""
    objects = await storage.list(prefix)
    names = [name for obj in objects if "/" not in (name := obj.key[len(prefix) :].lstrip("/"))]
    if not names:
        raise TapeError(f"the folder {prefix!r} is empty: there is no tape to read")
    tapes = [name for name in names if is_tape_file(name)]
    if not tapes:
        found = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
        raise TapeError(f"the folder {prefix!r} holds no .csv or .xlsx file (found: {found})")
    return sort_tape_files(tapes)


async def archive_inputs(storage: Storage, prefix: str, names: list[str], run_id: UUID) -> None:
    """Copy each input file to `archive/{run_id}/input/{name}` (a re-copy is harmless)."""
    target = archive_input_prefix(run_id)
    for name in names:
        source = safe_key(prefix, name)
        destination = safe_key(target, name)
        if source != destination:
            await storage.copy(source, destination)


@asynccontextmanager
async def downloaded_all(
    storage: Storage, prefix: str, names: list[str], work_dir: Path | None = None
) -> AsyncIterator[list[Path]]:
    """Local copies of a run's files, in the order of `names`, for the length of the block."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=work_dir) as folder:
        paths: list[Path] = []
        for index, name in enumerate(names):
            key = safe_key(prefix, name)
            path = Path(folder) / f"tape-{index}"
            try:
                await storage.download_to(key, path)
            except NotFound as error:
                raise TapeError(
                    f"{key} could not be read: it was removed before ingest read it"
                ) from error
            paths.append(path)
        yield paths
