"""Prometheus and Grafana for `stack up --with-monitoring`, from installed packages."""

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.cli.stack import ports, supervisor
from services.cli.stack.settings import StackSettings

Progress = Callable[[str], None]

GRAFANA_HOME = Path("/usr/share/grafana")


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitoring process: how to run it, or why it cannot run here."""

    name: str
    argv: list[str] | None
    missing: str | None
    port: int
    health_path: str
    metrics_path: str = "/metrics"

    def health_url(self) -> str:
        """Where the process reports its health."""
        return f"http://127.0.0.1:{self.port}{self.health_path}"

    def metrics_url(self) -> str:
        """Where the process serves its own metrics."""
        return f"http://127.0.0.1:{self.port}{self.metrics_path}"


def prometheus(settings: StackSettings) -> Monitor:
    """Prometheus with the project's config, data under `.stack/prometheus/`."""
    config = settings.project_dir / "infra" / "prometheus" / "prometheus.yml"
    binary = shutil.which("prometheus")
    missing = []
    if binary is None:
        missing.append("the prometheus binary (`apt-get install -y prometheus`)")
    if not config.is_file():
        missing.append(f"its config {config}")
    argv = None
    if not missing and binary is not None:
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={settings.state / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        ]
    return Monitor(
        "prometheus",
        argv,
        "missing " + " and ".join(missing) if missing else None,
        settings.prometheus_port,
        "/-/healthy",
    )


def grafana(settings: StackSettings) -> Monitor:
    """Grafana with the project's provisioning, data under `.stack/grafana/`."""
    folder = settings.project_dir / "infra" / "grafana"
    binary = shutil.which("grafana") or shutil.which("grafana-server")
    missing = []
    if binary is None or not GRAFANA_HOME.is_dir():
        missing.append(
            "the Grafana server (not in Debian's archive: install the `grafana` package from "
            "Grafana's apt repository)"
        )
    if not folder.is_dir():
        missing.append(f"its configuration folder {folder}")
    argv = None
    if not missing and binary is not None:
        head = [binary, "server"] if Path(binary).name == "grafana" else [binary]
        config = folder / "grafana.ini"
        argv = [
            *head,
            f"--homepath={GRAFANA_HOME}",
            *([f"--config={config}"] if config.is_file() else []),
            f"cfg:default.paths.data={settings.state / 'grafana'}",
            f"cfg:default.paths.logs={settings.logs_dir}",
            f"cfg:default.paths.provisioning={folder / 'provisioning'}",
            "cfg:default.server.http_addr=127.0.0.1",
            f"cfg:default.server.http_port={settings.grafana_port}",
        ]
    return Monitor(
        "grafana",
        argv,
        "missing " + " and ".join(missing) if missing else None,
        settings.grafana_port,
        "/api/health",
    )


def monitors(settings: StackSettings) -> list[Monitor]:
    """Every monitoring process, runnable or not."""
    return [prometheus(settings), grafana(settings)]


def start(settings: StackSettings, monitor: Monitor) -> supervisor.Spawned:
    """Start one runnable monitor, logging to `.stack/logs/<name>.log`."""
    if monitor.argv is None:
        raise ValueError(f"{monitor.name} cannot run: {monitor.missing}")
    ports.require_free(monitor.port, monitor.name, f"STACK_{monitor.name.upper()}_PORT")
    return supervisor.spawn(monitor.argv, settings.logs_dir / f"{monitor.name}.log")
