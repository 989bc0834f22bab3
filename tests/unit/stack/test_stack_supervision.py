"""The supervisord configuration `stack up` writes."""

import configparser
import os
import shlex
import socket
from pathlib import Path

from services.cli.stack.procfile import Entry, load
from services.cli.stack.settings import PROJECT_DIR, StackSettings
from services.cli.stack.supervision import program_command, render_config, start_program

ENTRIES = [
    Entry("ingest", "python -m services.ingest.main"),
    Entry("rules", "python -m services.rules.main --ratio 50%"),
]


def parsed(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def executed(config: configparser.ConfigParser, name: str) -> list[str]:
    """The words of what a program's shell execs."""
    shell = shlex.split(config[f"program:{name}"]["command"].replace("%%", "%"))
    return shlex.split(shell[2])


def settings(tmp_path: Path, **values: object) -> StackSettings:
    return StackSettings(project_dir=tmp_path, state_dir=tmp_path / ".stack", **values)


def test_each_procfile_entry_is_a_program_restarted_with_back_off_and_started_by_up(
    tmp_path: Path,
) -> None:
    backing_off = settings(tmp_path, start_seconds=7, start_retries=4)
    config = parsed(render_config(backing_off, ENTRIES, {}))
    assert [s for s in config.sections() if s.startswith("program:")] == [
        "program:ingest",
        "program:rules",
    ]
    ingest = config["program:ingest"]
    assert ingest["autostart"] == "false"  # `up` starts it once its port is known to be free
    assert (ingest["autorestart"], ingest["startsecs"], ingest["startretries"]) == (
        "unexpected",
        "7",
        "4",
    )
    assert ingest["stopasgroup"] == ingest["killasgroup"] == "true"
    assert ingest["stdout_logfile"] == str(tmp_path / ".stack" / "logs" / "ingest.log")


def test_a_command_runs_through_a_shell_that_execs_it_so_the_pid_is_the_services_own() -> None:
    assert program_command(ENTRIES[0]) == "/bin/sh -c 'exec python -m services.ingest.main'"
    assert program_command(ENTRIES[1]).endswith("--ratio 50%%'")  # supervisord's own % escape


def test_the_rpc_socket_lives_in_the_state_folder_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    config = parsed(render_config(settings(tmp_path), ENTRIES, {}))
    assert config["unix_http_server"]["file"] == str(tmp_path / ".stack" / "supervisor.sock")
    assert config["unix_http_server"]["chmod"] == "0700"
    assert config["supervisord"]["logfile_maxbytes"] == "0"  # the restart history is kept


def test_the_fingerprint_changes_with_the_programs_or_the_environment(tmp_path: Path) -> None:
    def fingerprint(entries: list[Entry], environment: dict[str, str]) -> str:
        return render_config(settings(tmp_path), entries, environment).splitlines()[0]

    base = fingerprint(ENTRIES, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert base.startswith("# fingerprint ")
    assert base == fingerprint(ENTRIES, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert base != fingerprint(ENTRIES, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093"})
    assert base != fingerprint(ENTRIES[:1], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})


def test_a_port_held_by_a_process_of_another_stack_is_reported_never_fought_over(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        refused = start_program(settings(tmp_path, ingest_http_port=port), "ingest")
    assert refused is not None
    assert f"port {port} is taken by pid {os.getpid()}" in refused
    assert "INGEST_HTTP_PORT" in refused


def test_every_program_but_the_api_runs_at_the_worker_niceness_so_requests_get_a_core_first(
    tmp_path: Path,
) -> None:
    entries = load(PROJECT_DIR / "Procfile")
    config = parsed(render_config(settings(tmp_path, worker_nice=7), entries, {}))
    # The projector and the review jobs are the gateway's batch work: they yield to its API.
    assert {"projector", "jobs"} <= {entry.name for entry in entries}
    for entry in entries:
        if entry.name == "gateway":
            assert executed(config, entry.name)[:2] == ["exec", "python"]
        else:
            assert executed(config, entry.name)[:4] == ["exec", "nice", "-n", "7"], entry.name


def test_a_worker_niceness_of_zero_runs_every_program_at_normal_priority(tmp_path: Path) -> None:
    config = parsed(render_config(settings(tmp_path, worker_nice=0), ENTRIES, {}))
    assert [executed(config, e.name)[:2] for e in ENTRIES] == [["exec", "python"]] * 2
