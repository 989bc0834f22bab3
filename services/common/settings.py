"""The settings base: one object per service, read from the environment (SPEC §5).

Shared infrastructure (broker, database, storage, topic prefix) is read from unprefixed variables
so one `.env` serves every process; a service's own tunables use its prefix (`INGEST_`, ...).
Nothing else in the code base reads `os.environ`.
"""

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.numbers import DEFAULT_IRR_TARGET
from contracts.topics import DEFAULT_PREFIX, Topic


def shared(name: str, default: object, description: str) -> object:
    """A field read from an unprefixed environment variable shared by every service."""
    return Field(default, validation_alias=AliasChoices(name), description=description)


class ServiceSettings(BaseSettings):
    """What every Loan Engine process needs; subclasses add their own with an env prefix."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    service_name: str = "loan-engine"
    environment: Literal["development", "test", "production"] = shared(
        "ENVIRONMENT", "development", "Deployment environment; development logs coloured text."
    )
    kafka_bootstrap_servers: str = shared(
        "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers."
    )
    kafka_compression: Literal["none", "lz4", "zstd", "gzip", "snappy"] = shared(
        "KAFKA_COMPRESSION",
        "zstd",
        "Compression of produced records. zstd: ~7x smaller loan batches for ~1.6 us of CPU per "
        "loan; aiokafka's lz4 is LZ4-HC (level 9), ~5x slower for less.",
    )
    kafka_zstd_level: int = Field(
        1,
        ge=1,
        le=19,
        validation_alias=AliasChoices("KAFKA_ZSTD_LEVEL"),
        description="zstd level of produced record batches (1-19). aiokafka's own is 3; on loan "
        "batches 1 is cheaper (~0.3 us per loan) and smaller.",
    )
    max_failed_deliveries: int = Field(
        5,
        ge=1,
        validation_alias=AliasChoices("KAFKA_MAX_FAILED_DELIVERIES"),
        description="Deliveries of one record that fail the same permanent way before it is "
        "dead-lettered and its run failed.",
    )
    kafka_commit_interval_ms: int = Field(
        500,
        ge=0,
        validation_alias=AliasChoices("KAFKA_COMMIT_INTERVAL_MS"),
        description="Loan-batch consumers commit the offsets of the records they finished (their "
        "outputs acknowledged) together once per this many milliseconds instead of once per "
        "record; a crash redelivers at most that long's records. 0 commits every record.",
    )
    topic_prefix: str = shared("TOPIC_PREFIX", DEFAULT_PREFIX, "Prefix of every topic name.")
    database_url: SecretStr = shared(
        "DATABASE_URL",
        SecretStr("postgresql+asyncpg://loan_engine@127.0.0.1:5432/loan_engine"),
        "SQLAlchemy async URL of PostgreSQL.",
    )
    storage_type: Literal["local", "s3"] = shared(
        "STORAGE_TYPE", "local", "Where inputs, outputs and archives live."
    )
    storage_root: Path = shared(
        "STORAGE_ROOT", Path(".stack/storage"), "Root folder of local storage."
    )
    s3_bucket: str = shared("S3_BUCKET", "loan-engine", "Bucket for S3 storage.")
    s3_endpoint_url: str | None = shared("S3_ENDPOINT_URL", None, "S3 endpoint (MinIO, moto).")
    s3_region: str = shared("S3_REGION", "us-east-1", "S3 region.")
    loan_batch_size: int = shared(
        "LOAN_BATCH_SIZE", 500, "Loan events per Kafka record on loan topics."
    )
    consumer_workers: int = shared(
        "CONSUMER_WORKERS",
        3,
        "Loan-batch consumers per worker process, each on its own partitions: while one waits "
        "for the broker's acknowledgement or the database, another computes.",
    )
    default_irr_target: Decimal = shared("DEFAULT_IRR_TARGET", DEFAULT_IRR_TARGET, "IRR target.")
    log_level: str = shared("LOG_LEVEL", "INFO", "Log level.")
    log_format: Literal["json", "text", "auto"] = shared(
        "LOG_FORMAT", "auto", "json, coloured text, or auto (text in development)."
    )
    otel_exporter_otlp_endpoint: str | None = shared(
        "OTEL_EXPORTER_OTLP_ENDPOINT", None, "OTLP/HTTP endpoint; no export when unset."
    )
    otel_sample_ratio: float = shared(
        "OTEL_TRACES_SAMPLER_RATIO", 1.0, "Share of traces sampled (parent-based)."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 0

    @model_validator(mode="after")
    def _consumer_groups_under_the_topic_prefix(self) -> Self:
        """A consumer group not named explicitly is its default name under a non-default topic
        prefix.

        Groups are broker-wide, topics are per prefix: two deployments sharing a broker (staging
        and a benchmark, say) with bare group names would be members of one group and rebalance
        each other whenever any of their processes came or went. The default prefix keeps the
        bare names, so an existing deployment keeps its committed offsets. Idempotent: a name
        already under the prefix stays as it is.
        """
        if self.topic_prefix == DEFAULT_PREFIX:
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if (
                name.endswith("_group")
                and name not in self.model_fields_set
                and not value.startswith(self.topic_prefix)
            ):
                self.__dict__[name] = f"{self.topic_prefix}{value}"
        return self

    @property
    def commit_interval_seconds(self) -> float:
        """`kafka_commit_interval_ms` in seconds, for `consumer_options(commit_interval=...)`."""
        return self.kafka_commit_interval_ms / 1000

    @property
    def compression_type(self) -> str | None:
        """The producer's `compression_type` (aiokafka takes None for none)."""
        return None if self.kafka_compression == "none" else self.kafka_compression

    def topic(self, topic: Topic) -> str:
        """The physical name of a registry topic under this deployment's prefix."""
        return topic.physical(self.topic_prefix)

    @property
    def database_dsn(self) -> str:
        """The database URL as text (never log it: it may hold a password)."""
        return self.database_url.get_secret_value()
