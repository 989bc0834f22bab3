"""The status report of the stack: the exact JSON shape of SPEC §6, passwords redacted."""

from dataclasses import dataclass
from typing import Any

from services.cli.stack.urls import redact


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One process as `status` shows it; `detail` is for people, not for the JSON."""

    name: str
    pid: int | None
    state: str
    health_url: str | None
    metrics_url: str | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StackStatus:
    """Broker, database and processes of the stack."""

    kafka_bootstrap_servers: str
    kafka_healthy: bool
    postgres_url: str
    postgres_healthy: bool
    gateway_url: str
    processes: tuple[ProcessStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """`{"kafka", "postgres", "gateway_url", "processes"}` exactly as SPEC §6 names them."""
        return {
            "kafka": {
                "bootstrap_servers": self.kafka_bootstrap_servers,
                "healthy": self.kafka_healthy,
            },
            "postgres": {"url": redact(self.postgres_url), "healthy": self.postgres_healthy},
            "gateway_url": self.gateway_url,
            "processes": [
                {
                    "name": process.name,
                    "pid": process.pid,
                    "state": process.state,
                    "health_url": process.health_url,
                    "metrics_url": process.metrics_url,
                }
                for process in self.processes
            ],
        }

    def render(self) -> str:
        """A table for people."""
        kafka = "healthy" if self.kafka_healthy else "down"
        database = "healthy" if self.postgres_healthy else "down"
        lines = [
            f"kafka     {kafka:<8} {self.kafka_bootstrap_servers}",
            f"postgres  {database:<8} {redact(self.postgres_url)}",
            f"gateway   {self.gateway_url}",
            "",
            f"{'PROCESS':<12} {'PID':>7}  {'STATE':<8} HEALTH",
        ]
        for process in self.processes:
            pid = str(process.pid) if process.pid is not None else "-"
            line = f"{process.name:<12} {pid:>7}  {process.state:<8} {process.health_url or '-'}"
            lines.append(f"{line}  {process.detail}" if process.detail else line)
        return "\n".join(lines)

    @property
    def failed(self) -> list[ProcessStatus]:
        """Processes that are not running although they should."""
        return [process for process in self.processes if process.state == "failed"]
