"""Service processes from the Procfile: one honcho per process, so one failure stops no other."""

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from services.cli.stack import supervisor
from services.cli.stack.procfile import Entry
from services.cli.stack.settings import StackSettings

HEALTHY = "healthy"
RUNNING = "running"
FAILED = "failed"
STOPPED = "stopped"


def process_environment(infra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a service: ours, the infra variables, and this venv first on PATH."""
    environment = {**os.environ, **infra}
    # `python` in the Procfile must be this virtualenv's interpreter, activated or not.
    environment["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), environment.get("PATH", "")]
    )
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def honcho_argv(settings: StackSettings, entry: Entry) -> list[str]:
    """The honcho command that runs exactly one Procfile process."""
    return [
        sys.executable,
        "-m",
        "honcho",
        "--no-colour",
        "-f",
        str(settings.procfile),
        "-d",
        str(settings.project_dir),
        "-e",
        str(settings.env_file),
        "start",
        entry.name,
    ]


def log_file(settings: StackSettings, name: str) -> Path:
    """Where a process of the stack logs."""
    return settings.logs_dir / f"{name}.log"


def start(settings: StackSettings, entry: Entry, infra: Mapping[str, str]) -> supervisor.Spawned:
    """Start one Procfile process under its own honcho, logging to `.stack/logs/<name>.log`."""
    return supervisor.spawn(
        honcho_argv(settings, entry),
        log_file(settings, entry.name),
        env=process_environment(infra),
        cwd=settings.project_dir,
    )


def health_url(settings: StackSettings, name: str) -> str | None:
    """The `/health` URL of a process with an HTTP port."""
    port = settings.http_port(name)
    return f"http://127.0.0.1:{port}/health" if port else None


def metrics_url(settings: StackSettings, name: str) -> str | None:
    """The `/metrics` URL of a process with an HTTP port."""
    port = settings.http_port(name)
    return f"http://127.0.0.1:{port}/metrics" if port else None


def answers(url: str | None, timeout: float = 1.0) -> bool:
    """Whether GET `url` returns 2xx."""
    if url is None:
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def state_of(spawned: supervisor.Spawned | None, url: str | None, missing: str | None) -> str:
    """healthy / running / failed / stopped, from what the stack recorded and what answers."""
    if missing is not None:
        return FAILED
    if spawned is None:
        return STOPPED
    if not supervisor.is_alive(spawned):
        return FAILED
    return HEALTHY if answers(url) else RUNNING
