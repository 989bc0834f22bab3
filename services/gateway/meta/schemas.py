"""`/config` shape."""

from pydantic import BaseModel, Field


class ConfigResponse(BaseModel):
    """Where the deployment keeps its files."""

    storage_type: str = Field(examples=["local"])
    s3_bucket: str | None = Field(examples=["loan-engine"])
    environment: str = Field(examples=["development"])
