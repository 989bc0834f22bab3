"""Settings of the reporting service (env prefix `REPORTING_`; shared infrastructure unprefixed)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """What reporting needs beyond the shared settings: consumer groups, output tuning."""

    model_config = SettingsConfigDict(
        env_prefix="REPORTING_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "reporting"
    http_port: int = 8104
    priced_group: str = Field("reporting", description="Consumer group on loans.priced.v1.")
    runs_group: str = Field(
        "reporting-runs",
        description="Consumer group on runs.v1 (its own, so a long run completion on one "
        "subscription never stalls the other's rebalances).",
    )
    reviews_group: str = Field(
        "reporting-reviews",
        description="Consumer group on reviews.v1 (decisions, for the decision tape).",
    )
    review_batch_records: int = Field(
        500,
        ge=1,
        description="Review events folded per transaction (records fetched per poll of "
        "reviews.v1).",
    )
    work_dir: Path | None = Field(
        None, description="Where reports are written before upload (default: system temp)."
    )
    stream_chunk: int = Field(
        2000, ge=1, description="Loans fetched per round trip while the reports are written."
    )
    output_attempts: int = Field(
        6, ge=1, description="Tries at writing a run's outputs before the run fails (back-off)."
    )
    output_backoff_seconds: float = Field(
        0.5, ge=0, description="First back-off between output tries; doubles each time."
    )
    db_pool_size: int = Field(5, ge=1, description="PostgreSQL connections kept open.")
    migrate_on_start: bool = Field(
        True, description="Upgrade the `reporting` schema to head when the worker starts."
    )
