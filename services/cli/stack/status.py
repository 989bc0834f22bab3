"""The status report of the stack: the exact JSON shape of SPEC §6, passwords redacted."""

from dataclasses import dataclass
from typing import Any

from services.cli.stack.restarts import Exit
from services.cli.stack.urls import redact

PROBLEM_STATES = frozenset({"failed", "restarting", "orphaned"})


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One process as `status` shows it; `detail` is for people, not for the JSON."""

    name: str
    pid: int | None
    state: str
    health_url: str | None
    metrics_url: str | None
    detail: str = ""
    restarts: int = 0
    """Times the supervisor restarted it after it exited (since the stack came up)."""
    last_exit: Exit | None = None


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
                    "restarts": process.restarts,
                    "last_exit": process.last_exit.to_json() if process.last_exit else None,
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
            f"{'PROCESS':<12} {'PID':>7}  {'STATE':<10} {'RESTARTS':>8}  {'LAST EXIT':<34} HEALTH",
        ]
        for process in self.processes:
            pid = str(process.pid) if process.pid is not None else "-"
            last_exit = process.last_exit.render() if process.last_exit else "-"
            line = (
                f"{process.name:<12} {pid:>7}  {process.state:<10} {process.restarts:>8}  "
                f"{last_exit:<34} {process.health_url or '-'}"
            )
            lines.append(f"{line}  {process.detail}" if process.detail else line)
        return "\n".join(lines)

    @property
    def failed(self) -> list[ProcessStatus]:
        """Processes that are not running although they should (given up, or still restarting)."""
        return [process for process in self.processes if process.state in PROBLEM_STATES]
