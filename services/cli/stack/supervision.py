"""Every service process under one supervisord per stack, restarted with back-off.

supervisord (not a home-made loop) owns the service processes: it runs each Procfile command
directly (`sh -c 'exec ...'`, so the pid it reports is the service's own), restarts one that
exits, backs off linearly (1 s, 2 s, 3 s, ...) while a process keeps dying within
`STACK_START_SECONDS` of its start and gives up (FATAL) after `STACK_START_RETRIES` such tries.
A program that crashes after running a while passes the crash-loop gate (`gate.py`) on every
restart: after `STACK_CRASH_FREE_RESTARTS` restarts within `STACK_CRASH_WINDOW_SECONDS` it waits
2 s, 4 s, ... (at most `STACK_CRASH_BACKOFF_CAP`), and after `STACK_CRASH_LIMIT` it stays down.
The CLI talks to it over XML-RPC on a unix socket in the state folder (mode 0700); its log,
`.stack/logs/supervisord.log`, is the history `stack status` reads restarts and exits from.
"""

import configparser
import contextlib
import hashlib
import io
import json
import os
import shlex
import signal
import sys
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from supervisor.xmlrpc import SupervisorTransport

from services.cli.stack import gate, ports, supervisor
from services.cli.stack.errors import StartFailed
from services.cli.stack.procfile import Entry
from services.cli.stack.settings import StackSettings

Progress = Callable[[str], None]

NAME = "supervisord"
MARKER = "LOAN_ENGINE_STACK"
"""Set in the environment of supervisord and every service: finds orphans of this stack."""

ALIVE_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF", "STOPPING"})
"""supervisord states of a program it is keeping up (anything else needs a start)."""

API_PROGRAMS = frozenset({"gateway"})
"""Programs that answer people, at normal priority; the others are batch work (`worker_nice`)."""


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    """One program as supervisord reports it (`getAllProcessInfo`)."""

    name: str
    statename: str
    pid: int | None
    description: str

    @classmethod
    def from_rpc(cls, info: Mapping[str, Any]) -> "ProgramInfo":
        """Read one entry of `supervisor.getAllProcessInfo()`."""
        pid = int(info.get("pid") or 0)
        return cls(
            name=str(info["name"]),
            statename=str(info["statename"]),
            pid=pid or None,
            description=str(info.get("description") or ""),
        )


def config_file(settings: StackSettings) -> Path:
    """The generated supervisord configuration of this stack."""
    return settings.state / "supervisord.conf"


def socket_file(settings: StackSettings) -> Path:
    """The unix socket supervisord answers XML-RPC on."""
    return settings.state / "supervisor.sock"


def log_file(settings: StackSettings) -> Path:
    """supervisord's own log: spawns, exits and give-ups of every program."""
    return settings.logs_dir / "supervisord.log"


def program_command(entry: Entry, settings: StackSettings | None = None) -> str:
    """The supervisord `command` of a Procfile entry: a shell that execs it (same pid).

    With `settings`, the shell execs the crash-loop gate first (`gate.py`), which waits or gives
    up when the program keeps crashing, then execs the entry's command (still the same pid);
    every program but the API's runs at the stack's `worker_nice` (`nice` execs too).
    """
    command = entry.command
    if settings is not None:
        gate = [
            "python",
            "-m",
            "services.cli.stack.gate",
            entry.name,
            str(settings.state),
            f"{settings.crash_window_seconds:g}",
            str(settings.crash_free_restarts),
            f"{settings.crash_backoff_cap:g}",
            str(settings.crash_limit),
            str(settings.start_seconds + 1),
            "--",
        ]
        command = f"{shlex.join(gate)} {shlex.quote(entry.command)}"
        if settings.worker_nice and entry.name not in API_PROGRAMS:
            command = f"nice -n {settings.worker_nice} {command}"
    # `%` is supervisord's own expansion character in `command`.
    return shlex.join(["/bin/sh", "-c", f"exec {command}"]).replace("%", "%%")


def crash_policy(settings: StackSettings) -> gate.Policy:
    """The crash-loop policy the gate applies to every program of the stack."""
    return gate.Policy(
        settings.crash_window_seconds,
        settings.crash_free_restarts,
        settings.crash_backoff_cap,
        settings.crash_limit,
    )


def render_config(
    settings: StackSettings, entries: Iterable[Entry], environment: Mapping[str, str]
) -> str:
    """supervisord.conf: the daemon, its socket, and one program per Procfile entry.

    The first line is a fingerprint of the programs and the stack's environment, so `up` can
    tell whether a running supervisord still runs what it would start now.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser["supervisord"] = {
        "nodaemon": "true",
        "silent": "true",
        "logfile": _escaped(log_file(settings)),
        # Never rotated: it is the restart history `stack status` reads.
        "logfile_maxbytes": "0",
        "pidfile": _escaped(settings.state / "supervisord.pid"),
        "childlogdir": _escaped(settings.logs_dir),
        "directory": _escaped(settings.project_dir),
        "identifier": f"loan-engine:{settings.state}".replace("%", "%%"),
    }
    parser["unix_http_server"] = {"file": _escaped(socket_file(settings)), "chmod": "0700"}
    parser["rpcinterface:supervisor"] = {
        "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
    }
    parser["supervisorctl"] = {"serverurl": f"unix://{_escaped(socket_file(settings))}"}
    for entry in entries:
        parser[f"program:{entry.name}"] = {
            "command": program_command(entry, settings),
            "directory": _escaped(settings.project_dir),
            # `up` starts each program itself, after checking its port is free.
            "autostart": "false",
            # Every exit but the gate's giving up on a crash loop is restarted.
            "autorestart": "unexpected",
            "exitcodes": str(gate.GAVE_UP),
            "startsecs": str(settings.start_seconds),
            "startretries": str(settings.start_retries),
            "stopsignal": "TERM",
            "stopwaitsecs": str(int(settings.stop_timeout)),
            "stopasgroup": "true",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": _escaped(settings.logs_dir / f"{entry.name}.log"),
            "stdout_logfile_maxbytes": "50MB",
            "stdout_logfile_backups": "2",
        }
    body = io.StringIO()
    parser.write(body)
    fingerprint = hashlib.sha256(
        (body.getvalue() + json.dumps(dict(sorted(environment.items())))).encode()
    ).hexdigest()
    return f"# fingerprint {fingerprint}\n{body.getvalue()}"


def _escaped(path: Path | str) -> str:
    return str(path).replace("%", "%%")


def client(settings: StackSettings) -> Any:
    """An XML-RPC proxy to this stack's supervisord (`.supervisor.getState()`, ...)."""
    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_file(settings)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def answers(settings: StackSettings) -> bool:
    """Whether supervisord answers on its socket and is running."""
    try:
        return client(settings).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def programs(settings: StackSettings) -> dict[str, ProgramInfo]:
    """Every program supervisord knows, by name ({} when it does not answer)."""
    try:
        infos = client(settings).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return {}
    return {info["name"]: ProgramInfo.from_rpc(info) for info in infos}


def strays(settings: StackSettings) -> list[psutil.Process]:
    """Processes of this stack's supervision (marked in their environment), wherever they are.

    After a `kill -9` of supervisord its services live on as orphans: this finds them.
    """
    marker = str(settings.state)
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(MARKER) == marker:
                found.append(process)
        except psutil.Error:
            continue
    return found


def end_strays(settings: StackSettings, progress: Progress) -> list[int]:
    """SIGTERM every stray of this stack, SIGKILL what is left after the stop timeout."""
    found = strays(settings)
    if not found:
        return []
    progress(f"stopping {len(found)} orphaned process(es): {', '.join(str(p.pid) for p in found)}")
    for process in found:
        try:
            process.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(found, timeout=settings.stop_timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)
    return [process.pid for process in found]


def start_daemon(
    settings: StackSettings, config: str, environment: Mapping[str, str]
) -> supervisor.Spawned:
    """Write the config and start supervisord (no program yet); wait until it answers."""
    path = config_file(settings)
    path.write_text(config, encoding="utf-8")
    socket_file(settings).unlink(missing_ok=True)
    spawned = supervisor.spawn(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(path)],
        settings.state / "supervisord.out",
        env={**environment, MARKER: str(settings.state)},
        cwd=settings.project_dir,
    )
    if not supervisor.wait_until(
        lambda: not supervisor.is_alive(spawned) or answers(settings), settings.startup_timeout
    ) or not supervisor.is_alive(spawned):
        supervisor.stop(spawned)
        raise StartFailed(
            "supervisord did not start; last lines of "
            f"{settings.state / 'supervisord.out'}:\n"
            f"{supervisor.tail(settings.state / 'supervisord.out')}"
        )
    return spawned


def running_config(settings: StackSettings) -> str | None:
    """The config the running supervisord was started with (None when there is none)."""
    path = config_file(settings)
    return path.read_text(encoding="utf-8") if path.exists() else None


def start_program(settings: StackSettings, name: str) -> str | None:
    """Ask supervisord to start `name` unless its port is taken; the reason when not started.

    A port held by an orphan of this very stack is freed first; one held by anything else is
    reported, never fought over (a second copy would die on "address already in use").
    """
    port = settings.http_port(name)
    if port is not None and not ports.port_is_free(port):
        holder = ports.listener_pid(port)
        ours = {process.pid for process in strays(settings)}
        if holder is None or holder not in ours:
            variable = f"{name.upper()}_HTTP_PORT"
            return (
                f"port {port} is taken by {ports.describe_listener(port)}; "
                f"stop it or choose another port with {variable}"
            )
        _terminate(holder, settings.stop_timeout)
    # A start asked for by `up` is a fresh start: an earlier crash loop no longer counts.
    gate.clear(settings.state, name)
    try:
        client(settings).supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" not in fault.faultString:
            return f"supervisord could not start it: {fault.faultString}"
    return None


def _terminate(pid: int, timeout: float) -> None:
    try:
        process = psutil.Process(pid)
        process.terminate()
        process.wait(timeout)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.Error:
        return


def stop_daemon(
    settings: StackSettings, daemon: supervisor.Spawned | None, progress: Progress
) -> list[str]:
    """Stop supervisord and its services, then any orphan of this stack; the services stopped.

    supervisord gets SIGTERM alone, so it stops each service the way its config says (SIGTERM,
    `stopwaitsecs`, then SIGKILL to the process group); whatever survives is killed afterwards.
    """
    alive = [
        program
        for program in programs(settings).values()
        if program.pid is not None and program.statename in ALIVE_STATES
    ]
    for program in alive:
        progress(f"stopping {program.name} (pid {program.pid})")
    if daemon is not None and supervisor.is_alive(daemon):
        with contextlib.suppress(OSError):
            os.kill(daemon.pid, signal.SIGTERM)
        if not supervisor.wait_until(
            lambda: not supervisor.is_alive(daemon), settings.stop_timeout + 10
        ):
            supervisor.stop(daemon, timeout=1)
    end_strays(settings, progress)
    socket_file(settings).unlink(missing_ok=True)
    return [program.name for program in alive]
