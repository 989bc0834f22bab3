"""Settings of the local stack: where it lives, its ports and what it runs."""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import DEFAULT_PREFIX

PROJECT_DIR = Path(__file__).resolve().parents[3]
"""The repository root (the package is installed editable by `uv sync`)."""

SERVICE_HTTP_PORTS: dict[str, int] = {
    "gateway": 8000,
    "ingest": 8101,
    "rules": 8102,
    "pricing": 8103,
    "reporting": 8104,
    "projector": 8105,
    "scoring": 8106,
    "jobs": 8107,
}
"""Default health/metrics port of each Procfile process (env `<SERVICE>_HTTP_PORT`)."""


PORT_ALIASES: dict[str, tuple[str, ...]] = {
    "projector": ("GATEWAY_PROJECTOR_HTTP_PORT",),
    "jobs": ("GATEWAY_JOBS_HTTP_PORT",),
}
"""Other names a process reads its port from (the projector and the review jobs have the
gateway's env prefix)."""


def port_variables(service: str) -> tuple[str, ...]:
    """Every environment variable naming a process's HTTP port, the canonical one first."""
    return (f"{service.upper()}_HTTP_PORT", *PORT_ALIASES.get(service, ()))


def _port(service: str) -> object:
    names = port_variables(service)
    return Field(SERVICE_HTTP_PORTS[service], validation_alias=AliasChoices(*names))


class StackSettings(BaseSettings):
    """Where the stack keeps its state and which ports it takes (env prefix `STACK_`)."""

    model_config = SettingsConfigDict(
        env_prefix="STACK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    project_dir: Path = PROJECT_DIR
    state_dir: Path | None = Field(None, description="Defaults to <project_dir>/.stack.")
    procfile_path: Path | None = Field(None, description="Defaults to <project_dir>/Procfile.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "loan-engine", description="Kafka jars, reused across clones."
    )
    kafka_version: str = "4.1.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    maven_command: str = "mvn"
    java_command: str = "java"
    postgres_port: int = 55432
    postgres_database: str = "loan_engine"
    postgres_bin_dir: Path | None = Field(None, description="Default: newest Debian cluster.")
    prometheus_port: int = 9090
    grafana_port: int = 3000
    startup_timeout: float = 90.0
    service_ready_timeout: float = 30.0
    stop_timeout: float = 15.0
    start_seconds: int = Field(
        10, ge=0, description="A service that dies sooner after its start is retried with back-off."
    )
    start_retries: int = Field(
        25, ge=0, description="Quick deaths in a row (back-off 1 s, 2 s, ...) before giving up."
    )
    crash_window_seconds: float = Field(
        600.0, gt=0, description="Restarts within this many seconds count towards a crash loop."
    )
    crash_free_restarts: int = Field(
        3, ge=0, description="Restarts within the window made at once (then 2 s, 4 s, ...)."
    )
    crash_backoff_cap: float = Field(60.0, ge=0, description="Longest wait before a restart.")
    crash_limit: int = Field(
        10, ge=1, description="Restarts within the window before a program is given up."
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description=(
            "Niceness of every program but the API: on a busy machine a person's request gets "
            "a core before a batch does, and the batch workers take what is left (0: equal)."
        ),
    )

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL"),
        description="Use this PostgreSQL instead of a private cluster.",
    )
    topic_prefix: str = Field(DEFAULT_PREFIX, validation_alias=AliasChoices("TOPIC_PREFIX"))

    gateway_http_port: int = _port("gateway")
    ingest_http_port: int = _port("ingest")
    rules_http_port: int = _port("rules")
    pricing_http_port: int = _port("pricing")
    reporting_http_port: int = _port("reporting")
    projector_http_port: int = _port("projector")
    scoring_http_port: int = _port("scoring")
    jobs_http_port: int = _port("jobs")

    @property
    def state(self) -> Path:
        """The stack's own folder (absolute)."""
        return (self.state_dir or self.project_dir / ".stack").resolve()

    @property
    def logs_dir(self) -> Path:
        """Where every process of the stack writes its log."""
        return self.state / "logs"

    @property
    def env_file(self) -> Path:
        """The infra variables every process gets and other CLI commands read."""
        return self.state / "env"

    @property
    def storage_root(self) -> Path:
        """The local storage root of the stack's services."""
        return self.state / "storage"

    @property
    def procfile(self) -> Path:
        """The Procfile naming every service process."""
        return (self.procfile_path or self.project_dir / "Procfile").resolve()

    @property
    def kafka_bootstrap_servers(self) -> str:
        """Where clients reach the stack's broker."""
        return f"127.0.0.1:{self.kafka_port}"

    def http_port(self, service: str) -> int | None:
        """The health/metrics port of a Procfile process, if it has one."""
        port = getattr(self, f"{service}_http_port", None)
        return port if isinstance(port, int) else None

    def service_ports_env(self) -> dict[str, str]:
        """`<SERVICE>_HTTP_PORT` and its aliases for every known process."""
        return {
            variable: str(self.http_port(service))
            for service in SERVICE_HTTP_PORTS
            for variable in port_variables(service)
        }
