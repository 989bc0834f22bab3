"""Settings of the ingest service (env prefix `INGEST_`; shared infrastructure unprefixed)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.ingest.readers import ReadLimits


class IngestSettings(ServiceSettings):
    """What ingest needs beyond the shared settings: its state folder and consumer tuning."""

    model_config = SettingsConfigDict(
        env_prefix="INGEST_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "ingest"
    http_port: int = 8101
    state_dir: Path = Field(
        Path(".stack/state/ingest"),
        description="Durable local state: the producer-tape spool and the runs ingest started.",
    )
    work_dir: Path | None = Field(
        None, description="Where input files are downloaded while read (default: system temp)."
    )
    runs_group: str = Field("ingest", description="Consumer group on runs.v1.")
    runs_workers: int = Field(
        3,
        ge=1,
        description=(
            "Run requests handled at once (one consumer each, sharing runs.v1's partitions): "
            "a long tape holds up only the requests behind it in its own partitions."
        ),
    )
    tapes_group: str = Field("ingest-tapes", description="Consumer group on loan-tapes.v1.")
    max_poll_interval_ms: int = Field(
        3_600_000,
        description="A million-loan tape is read inside one message's handling; allow an hour.",
    )
    tapes_poll_records: int = Field(5_000, description="Producer rows taken per poll.")
    publish_window: int = Field(
        16, description="Loan batches in flight to the broker before ingest waits for acks."
    )
    max_batch_bytes: int = Field(
        4 * 1024 * 1024,
        gt=0,
        description=(
            "A loan batch is cut early once its loans' text adds up to this many bytes, so a "
            "tape of very long cells stays under the broker's record limit (and so does "
            "every downstream batch, which grows with each stage)."
        ),
    )
    missing_rows_shown: int = Field(
        10, description="How many missing row numbers a failed tape's error names."
    )
    open_tape_ttl_seconds: int = Field(
        86_400,
        gt=0,
        description=(
            "A producer tape expires (rows dropped, commit released) when its newest row was "
            "spooled longer ago than this and ingest has read its partition to the end."
        ),
    )

    max_rows: int = Field(
        5_000_000, gt=0, description="Most data rows one tape file may have (after its header)."
    )
    max_columns: int = Field(1_000, gt=0, description="Most columns one tape file may have.")
    max_unpacked_bytes: int = Field(
        2 * 1024**3, gt=0, description="Most bytes an XLSX file may unpack to (zip bombs)."
    )

    max_cell_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description=(
            "Most bytes of text one place of an XLSX's XML may hold (a cell, or whitespace "
            "between tags): more is refused before the XML is parsed."
        ),
    )

    @property
    def read_limits(self) -> ReadLimits:
        """The bounds a tape file is read within."""
        return ReadLimits(
            self.max_rows, self.max_columns, self.max_unpacked_bytes, self.max_cell_bytes
        )

    @property
    def spool_path(self) -> Path:
        """The SQLite file holding the producer-tape spool and the started-runs ledger."""
        return self.state_dir / "ingest.sqlite3"
