"""A run's report files and archive: lists and streamed, traversal-safe downloads."""

from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from contracts.runs import OUTPUT_KEYS
from services.common.storage import InvalidPath, Storage, safe_key
from services.common.storage import NotFound as StorageNotFound
from services.gateway.deps import CurrentUser, SessionDep, StorageDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest, NotFound
from services.gateway.files.inputs import check_length
from services.gateway.runs import repository as repo
from services.gateway.runs.schemas import ArchiveEntry, ArchiveResponse, ReportFileResponse
from services.gateway.runs.service import visible_run
from services.gateway.runs.views import report_response

router = APIRouter(prefix="/runs", tags=["outputs"])
ARCHIVE_AREAS = ("input", "output")


def attachment(filename: str) -> str:
    """A Content-Disposition value that no file name can break out of."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def stream_file(
    storage: Storage, key: str, filename: str, media_type: str
) -> StreamingResponse:
    """Stream a stored object as an attachment; 404 when it is not in storage."""
    try:
        stored = await storage.stat(key)
    except StorageNotFound as error:
        raise NotFound("File not found in storage") from error
    return StreamingResponse(
        storage.iter_bytes(key),
        media_type=media_type,
        headers={
            "Content-Disposition": attachment(filename),
            "Content-Length": str(stored.size),
        },
    )


@router.get("/{run_id}/notebook-outputs", response_model=list[ReportFileResponse])
async def list_outputs(
    run_id: UUID, user: CurrentUser, session: SessionDep
) -> list[ReportFileResponse]:
    """The run's four reports: name, size, rows, sha256 and when they were written."""
    await visible_run(session, user, run_id)
    return [report_response(row) for row in await repo.report_rows(session, run_id)]


@router.get("/{run_id}/notebook-outputs/{key}/download", responses=documented(400))
async def download_output(
    run_id: UUID, key: str, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    """Download one report: purchase_tape, projected_tape, rejection_report or exception_summary."""
    if key not in OUTPUT_KEYS:
        raise BadRequest(f"Unknown report {key!r}; one of {', '.join(OUTPUT_KEYS)}")
    await visible_run(session, user, run_id)
    row = await repo.report_row(session, run_id, key)
    if row is None:
        raise NotFound("The report has not been written yet")
    return await stream_file(storage, row.storage_key, f"{key}.csv", "text/csv")


def _archive_prefix(run_id: UUID) -> str:
    return f"archive/{run_id}"


@router.get("/{run_id}/archive", response_model=ArchiveResponse)
async def list_archive(
    run_id: UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> ArchiveResponse:
    """The run's archived input files and reports."""
    await visible_run(session, user, run_id)
    prefix = _archive_prefix(run_id)
    found: dict[str, list[ArchiveEntry]] = {}
    for area in ARCHIVE_AREAS:
        objects = await storage.list(f"{prefix}/{area}")
        found[area] = [
            ArchiveEntry(
                path=obj.key[len(prefix) + 1 :],
                name=obj.key.rsplit("/", 1)[-1],
                size=obj.size,
                last_modified=obj.last_modified,
            )
            for obj in objects
        ]
    return ArchiveResponse(input=found["input"], output=found["output"])


@router.get("/{run_id}/archive/download", responses=documented(400))
async def download_archive(
    run_id: UUID,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    path: str = Query(max_length=1000, description="e.g. `input/tape.csv`."),
) -> StreamingResponse:
    """Download one archived file by its path inside the run's archive."""
    try:
        clean = safe_key(path)
    except InvalidPath as error:
        raise BadRequest("Invalid archive path") from error
    check_length(clean)
    area, _, name = clean.partition("/")
    if area not in ARCHIVE_AREAS or not name:
        raise BadRequest("Archive paths start with input/ or output/")
    await visible_run(session, user, run_id)
    filename = clean.rsplit("/", 1)[-1]
    return await stream_file(
        storage, f"{_archive_prefix(run_id)}/{clean}", filename, "application/octet-stream"
    )
