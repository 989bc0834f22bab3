"""Start detached process groups and stop exactly those again (pid reuse guarded)."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True, slots=True)
class Spawned:
    """A process the stack started: its pid (also its process group) and creation time."""

    pid: int
    create_time: float

    def to_json(self) -> dict[str, float]:
        """The state-file form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, float]) -> "Spawned":
        """Read the state-file form."""
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]))


def spawn(
    argv: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Spawned:
    """Start `argv` in a new session (its own process group), appending output to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Spawned(pid=process.pid, create_time=psutil.Process(process.pid).create_time())


def _process(spawned: Spawned) -> psutil.Process | None:
    try:
        process = psutil.Process(spawned.pid)
        # A recycled pid has another creation time: then it is not ours.
        if abs(process.create_time() - spawned.create_time) > 0.01:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None


def is_alive(spawned: Spawned) -> bool:
    """Whether the process we started is still running (not a zombie, not a recycled pid)."""
    return _process(spawned) is not None


def stop(spawned: Spawned, timeout: float = 15.0) -> None:
    """Stop the process, its group and every descendant: SIGTERM, then SIGKILL after `timeout`."""
    process = _process(spawned)
    if process is None:
        return
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        family = [process]
    groups = {spawned.pid}
    for member in family:
        try:
            groups.add(os.getpgid(member.pid))
        except OSError:
            continue
    _signal_groups(groups, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    if alive:
        _signal_groups(groups, signal.SIGKILL)
        for member in alive:
            try:
                member.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(alive, timeout=5)
    _reap(spawned.pid)


def _signal_groups(groups: set[int], signum: int) -> None:
    for group in groups:
        # Never signal our own group: the stack CLI would kill itself.
        if group == os.getpgrp():
            continue
        try:
            os.killpg(group, signum)
        except OSError:
            continue


def _reap(pid: int) -> None:
    # When the child is ours (started in this very process), collect it so it is no zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    """Poll `check` until it returns True or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
