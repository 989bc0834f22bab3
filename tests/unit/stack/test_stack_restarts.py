"""Restarts and last exits, read from supervisord's log."""

from datetime import datetime

from services.cli.stack.restarts import read

LOG = """\
2026-12-06 22:39:58,001 INFO supervisord started with pid 100
2026-12-06 22:39:58,101 INFO spawned: 'ingest' with pid 201
2026-12-06 22:39:58,102 INFO spawned: 'rules' with pid 202
2026-12-06 22:40:08,200 INFO success: ingest entered RUNNING state, process has stayed up

2026-12-06 22:40:20,300 WARN exited: ingest (terminated by SIGKILL; not expected)
2026-12-06 22:40:21,310 INFO spawned: 'ingest' with pid 301
2026-12-06 22:40:22,000 WARN exited: rules (exit status 1; not expected)
2026-12-06 22:40:23,000 INFO spawned: 'rules' with pid 302
2026-12-06 22:40:24,000 WARN exited: rules (exit status 1; not expected)
2026-12-06 22:40:26,000 INFO spawned: 'rules' with pid 303
2026-12-06 22:40:30,000 WARN exited: rules (exit status 3; not expected)
2026-12-06 22:40:30,001 INFO gave up: rules entered FATAL state, too many start retries too quickly
"""


def test_a_spawn_after_an_exit_counts_as_a_restart_and_the_first_spawn_does_not() -> None:
    histories = read(LOG)
    assert histories["ingest"].restarts == 1
    assert histories["rules"].restarts == 2


def test_the_last_exit_keeps_the_signal_or_the_exit_code_and_when() -> None:
    histories = read(LOG)
    killed = histories["ingest"].last_exit
    assert killed is not None
    assert (killed.signal, killed.code, killed.expected) == ("SIGKILL", None, False)
    assert killed.at == datetime(2026, 12, 6, 22, 40, 20).astimezone()
    failed = histories["rules"].last_exit
    assert failed is not None
    assert (failed.code, failed.signal, failed.description) == (3, None, "exit status 3")


def test_a_requested_stop_is_no_exit_and_the_next_start_no_restart() -> None:
    histories = read(
        LOG
        + "2026-12-06 22:41:00,000 INFO stopped: ingest (terminated by SIGTERM)\n"
        + "2026-12-06 22:41:01,000 INFO spawned: 'ingest' with pid 401\n"
    )
    assert histories["ingest"].restarts == 1


def test_history_starts_again_when_supervisord_starts_again() -> None:
    histories = read(LOG + "2026-12-06 23:00:00,000 INFO supervisord started with pid 900\n")
    assert histories == {}


def test_lines_it_does_not_know_are_skipped() -> None:
    assert read("garbage\n2026-12-06 22:40:00,000 CRIT Supervisor is running as root\n") == {}
