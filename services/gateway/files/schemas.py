"""Shapes of the `inputs` file area."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class FileEntry(BaseModel):
    """One file or folder of the `inputs` area, relative to the caller's root."""

    name: str
    path: str
    type: Literal["file", "directory"]
    size: int | None = None
    last_modified: datetime | None = None


class FileListResponse(BaseModel):
    """A folder's entries."""

    path: str
    entries: list[FileEntry]
