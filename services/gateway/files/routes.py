"""`/files`: list, upload, download, mkdir and delete in your part of the `inputs` area."""

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from services.gateway.deps import CurrentUser, SettingsDep, StorageDep
from services.gateway.error_docs import documented
from services.gateway.files import inputs
from services.gateway.files.schemas import FileEntry, FileListResponse
from services.gateway.runs.outputs import stream_file

router = APIRouter(prefix="/files", tags=["files"], responses=documented(400, 404))
PathQuery = Annotated[str, Query(max_length=1000, description="Relative to your root.")]


@router.get("/list", response_model=FileListResponse)
async def list_files(
    user: CurrentUser, storage: StorageDep, path: PathQuery = ""
) -> FileListResponse:
    """The files and folders directly inside `path`."""
    return await inputs.list_folder(storage, user, path)


@router.post("/upload", status_code=201, response_model=FileEntry)
async def upload_file(
    user: CurrentUser,
    storage: StorageDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A .csv or .xlsx tape.")],
    path: PathQuery = "",
) -> FileEntry:
    """Upload a tape into the folder `path` (size-limited; 413 beyond the limit)."""
    return await inputs.upload(storage, user, path, file, settings.upload_max_bytes)


@router.get("/download")
async def download_file(
    user: CurrentUser, storage: StorageDep, path: PathQuery
) -> StreamingResponse:
    """Download one file."""
    key, _ = await inputs.file_key(storage, user, path)
    return await stream_file(storage, key, key.rsplit("/", 1)[-1], "application/octet-stream")


@router.post("/mkdir", status_code=201, response_model=FileEntry)
async def make_folder(user: CurrentUser, storage: StorageDep, path: PathQuery) -> FileEntry:
    """Create a folder."""
    return await inputs.make_folder(storage, user, path)


@router.delete("", status_code=204, response_class=Response)
async def delete(user: CurrentUser, storage: StorageDep, path: PathQuery) -> Response:
    """Delete a file, or a folder and everything in it."""
    await inputs.delete_path(storage, user, path)
    return Response(status_code=204)
