"""Process groups: started detached, stopped with every descendant, pid reuse guarded."""

import sys
import time
from pathlib import Path

import psutil

from services.cli.stack.supervisor import Spawned, is_alive, spawn, stop, tail, wait_until

# A parent that starts a grandchild ignoring SIGTERM in its own session, like honcho does.
FAMILY = """
import subprocess, sys, time
subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "print('child up', flush=True); time.sleep(60)"],
    start_new_session=True,
)
time.sleep(60)
"""


def test_spawned_process_logs_to_its_file_and_stop_ends_it(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    spawned = spawn(
        [sys.executable, "-c", "print('hello', flush=True); import time; time.sleep(60)"], log
    )
    assert wait_until(lambda: "hello" in tail(log), timeout=10)
    assert is_alive(spawned)
    stop(spawned, timeout=5)
    assert not is_alive(spawned)


def test_stop_also_ends_descendants_in_other_sessions(tmp_path: Path) -> None:
    log = tmp_path / "family.log"
    spawned = spawn([sys.executable, "-c", FAMILY], log)
    assert wait_until(lambda: "child up" in tail(log), timeout=10)
    children = psutil.Process(spawned.pid).children(recursive=True)
    assert children
    stop(spawned, timeout=0.5)
    time.sleep(0.2)
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )


def test_a_recycled_pid_is_not_taken_for_ours() -> None:
    ours = psutil.Process()
    assert is_alive(Spawned(ours.pid, ours.create_time()))
    assert not is_alive(Spawned(ours.pid, ours.create_time() - 100))


def test_stopping_a_process_that_already_ended_is_harmless(tmp_path: Path) -> None:
    spawned = spawn([sys.executable, "-c", "pass"], tmp_path / "quick.log")
    assert wait_until(lambda: not is_alive(spawned), timeout=10)
    stop(spawned, timeout=1)
    assert not is_alive(spawned)


def test_tail_gives_the_last_lines_and_nothing_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert tail(log, 2) == "line 98\nline 99"
    assert tail(tmp_path / "absent.log") == ""
