"""Response shapes shared by every list endpoint."""

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

# Text the database can store: no NUL character (PostgreSQL refuses it in `text`).
NO_NUL = r"^[^\x00]*$"
# A team id: the slug of its name.
TEAM_ID = r"^[a-z0-9][a-z0-9-]*$"


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (keyset paging)."""

    items: list[T]
    skip: int = Field(description="Rows skipped before this page.")
    limit: int = Field(description="Largest number of items a page holds.")
    next_cursor: str | None = Field(
        None, description="Pass as `after` for the next page; null on the last page."
    )


class ConfigResponse(BaseModel):
    """Where the deployment keeps its files."""

    storage_type: str = Field(examples=["local"])
    s3_bucket: str | None = Field(examples=["loan-engine"])
    environment: str = Field(examples=["development"])
