"""The crash-loop gate: restarts at once, then with back-off, then given up (pure parts)."""

import configparser
import shlex
import subprocess
import sys
import time
from pathlib import Path

from services.cli.stack import gate
from services.cli.stack.procfile import Entry
from services.cli.stack.settings import StackSettings
from services.cli.stack.supervision import render_config

POLICY = gate.Policy(window=600, free=3, cap=60, limit=10)
NOW = 1_000_000.0


def test_the_first_restarts_within_the_window_are_made_at_once() -> None:
    for restarts in range(4):
        decision = gate.decide([NOW - 10] * restarts, NOW, POLICY)
        assert decision == gate.Decision(restarts, 0.0, False)


def test_later_restarts_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    delays = [gate.decide([NOW - 10] * restarts, NOW, POLICY).delay for restarts in range(4, 11)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_program_restarted_more_than_the_limit_within_the_window_is_given_up() -> None:
    assert gate.decide([NOW - 10] * 11, NOW, POLICY).gave_up


def test_starts_older_than_the_window_do_not_count() -> None:
    decision = gate.decide([NOW - 601] * 50 + [NOW - 5], NOW, POLICY)
    assert decision == gate.Decision(1, 0.0, False)


def test_status_describes_a_wait_and_a_give_up_and_nothing_otherwise() -> None:
    starts = [NOW - 30, NOW - 20, NOW - 10, NOW - 5, NOW - 1]
    waiting = gate.Record(starts, waiting_until=NOW + 7)
    assert gate.describe(waiting, POLICY, NOW) == (
        "crash-looping: 4 restarts within 10 min, next start in 7 s"
    )
    described = gate.describe(gate.Record(starts, gave_up=True), POLICY, NOW)
    assert described is not None and described.startswith("crash-looping: gave up after 4")
    assert "loan-engine stack up" in described
    # Read long after giving up, it still counts the restarts that made it give up.
    later = gate.describe(gate.Record(starts, gave_up=True), POLICY, NOW + 700)
    assert later is not None and later.startswith("crash-looping: gave up after 4")
    assert gate.describe(gate.Record(starts, waiting_until=NOW - 1), POLICY, NOW) is None


def test_a_record_round_trips_and_an_unreadable_one_counts_as_empty(tmp_path: Path) -> None:
    path = gate.record_file(tmp_path, "rules")
    gate.Record([1.0, 2.0], waiting_until=3.0, gave_up=True).save(path)
    assert gate.Record.load(path) == gate.Record([1.0, 2.0], 3.0, True)
    path.write_text("{not json")
    assert gate.Record.load(path) == gate.Record([])
    gate.clear(tmp_path, "rules")
    assert not path.exists()


def test_supervisord_runs_every_program_through_the_gate_and_never_restarts_a_give_up(
    tmp_path: Path,
) -> None:
    settings = StackSettings(
        project_dir=tmp_path,
        state_dir=tmp_path / ".stack",
        crash_limit=4,
        start_seconds=7,
        worker_nice=0,
    )
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render_config(settings, [Entry("rules", "python -m x --ratio 50%")], {}))
    program = parser["program:rules"]
    assert (program["autorestart"], program["exitcodes"]) == ("unexpected", str(gate.GAVE_UP))
    shell = shlex.split(program["command"].replace("%%", "%"))
    assert shell[:2] == ["/bin/sh", "-c"]
    inner = shlex.split(shell[2])
    assert inner[:4] == ["exec", "python", "-m", "services.cli.stack.gate"]
    assert inner[4:11] == ["rules", str(settings.state), "600", "3", "60", "4", "8"]
    assert inner[11:] == ["--", "python -m x --ratio 50%"]


def run_gate(state: Path, limit: int, command: str) -> subprocess.CompletedProcess[str]:
    argv = ["rules", str(state), "600", "0", "0", str(limit), "0", "--", command]
    return subprocess.run(
        [sys.executable, "-m", "services.cli.stack.gate", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_gate_execs_the_command_and_gives_up_past_the_limit(tmp_path: Path) -> None:
    first = run_gate(tmp_path, 1, "echo started $((1 + 1))")
    assert (first.returncode, first.stdout) == (0, "started 2\n")
    second = run_gate(tmp_path, 1, "echo started")
    assert second.returncode == 0 and "waiting" not in second.stderr  # no back-off: cap 0
    third = run_gate(tmp_path, 1, "echo started")
    assert third.returncode == gate.GAVE_UP and third.stdout == ""
    assert "giving up" in third.stderr
    record = gate.Record.load(gate.record_file(tmp_path, "rules"))
    assert record.gave_up and len(record.starts) == 2
    assert all(time.time() - at < 60 for at in record.starts)
