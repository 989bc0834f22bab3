"""Service processes from the Procfile: their environment, logs, health and state."""

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from services.cli.stack import supervisor
from services.cli.stack.settings import StackSettings
from services.cli.stack.supervision import ProgramInfo

HEALTHY = "healthy"
RUNNING = "running"
RESTARTING = "restarting"
ORPHANED = "orphaned"
FAILED = "failed"
STOPPED = "stopped"

BROKER_ONLY = frozenset({"ingest", "rules", "pricing"})
"""Processes that need the broker but no database: `up` starts them before migrations end
(any other process waits for both)."""

RESTARTING_STATES = frozenset({"BACKOFF", "EXITED"})
"""supervisord states of a program that died and is about to be started again."""


def process_environment(infra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a service: ours, the infra variables, and this venv first on PATH."""
    environment = {**os.environ, **infra}
    # `python` in the Procfile must be this virtualenv's interpreter, activated or not.
    # (supervisord runs each command as `sh -c 'exec COMMAND'`: $VARIABLES expand, and the pid
    # it reports is the service's own.)
    environment["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), environment.get("PATH", "")]
    )
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def log_file(settings: StackSettings, name: str) -> Path:
    """Where a process of the stack logs."""
    return settings.logs_dir / f"{name}.log"


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


def state_of(
    program: ProgramInfo | None,
    url: str | None,
    missing: str | None,
    listening: Mapping[int, int | None] | None = None,
) -> str:
    """healthy / running / restarting / failed / stopped, from supervisord and what answers.

    `healthy` needs the health URL to answer *and* the answer to come from this very process
    (when the system tells who listens, in `listening`): an orphan holding the port does not
    count. Without `listening`, an answer is taken as the process's own (a cheap check).
    """
    if missing is not None:
        return FAILED
    if program is None:
        # Nothing supervises it, yet its port answers: a service whose supervisord was killed.
        return ORPHANED if answers(url) else STOPPED
    if program.statename in RESTARTING_STATES:
        return RESTARTING
    if program.statename == "FATAL":
        return FAILED
    if program.statename not in ("RUNNING", "STARTING") or program.pid is None:
        return STOPPED
    if not answers(url):
        return RUNNING
    return HEALTHY if listening is None or served_by(url, program.pid, listening) else RUNNING


def served_by(url: str | None, pid: int, listening: Mapping[int, int | None]) -> bool:
    """Whether the port of `url` is held by `pid` or one of its children (True when unknown)."""
    port = urlsplit(url).port if url else None
    if port is None:
        return True
    holder = listening.get(port)
    if holder is None or holder == pid:
        return True
    try:
        return holder in {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return False


def spawned_state(spawned: supervisor.Spawned | None, url: str | None) -> str:
    """The state of a process the stack spawned itself (Prometheus, Grafana)."""
    if spawned is None:
        return STOPPED
    if not supervisor.is_alive(spawned):
        return FAILED
    return HEALTHY if answers(url) else RUNNING
