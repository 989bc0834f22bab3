"""The Procfile: entries, their modules, and which modules are missing."""

from pathlib import Path

import pytest

from services.cli.stack.procfile import Entry, load, missing_module, module_path, parse
from services.cli.stack.settings import PROJECT_DIR, SERVICE_HTTP_PORTS


def test_parses_entries_in_order_ignoring_blank_lines_and_comments() -> None:
    text = "# services\ningest: python -m services.ingest.main\n\nrules:python -m x.y\n"
    assert parse(text) == [
        Entry("ingest", "python -m services.ingest.main"),
        Entry("rules", "python -m x.y"),
    ]


@pytest.mark.parametrize("line", ["no separator", ": python -m x", "bad name: cmd", "ingest:"])
def test_rejects_lines_that_are_not_name_colon_command(line: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse(line)


def test_module_is_the_argument_of_python_dash_m() -> None:
    assert Entry("a", "python -m services.gateway.projector.main").module == (
        "services.gateway.projector.main"
    )
    assert Entry("b", "python3 -m http.server 8000").module == "http.server"
    assert Entry("c", "sleep 10").module is None


def test_project_module_is_found_as_a_file_or_a_package_main(tmp_path: Path) -> None:
    (tmp_path / "services" / "ingest").mkdir(parents=True)
    (tmp_path / "services" / "ingest" / "main.py").touch()
    (tmp_path / "services" / "tool").mkdir()
    (tmp_path / "services" / "tool" / "__main__.py").touch()
    assert module_path(tmp_path, "services.ingest.main") == tmp_path / "services/ingest/main.py"
    assert module_path(tmp_path, "services.tool") == tmp_path / "services/tool/__main__.py"
    assert module_path(tmp_path, "services.rules.main") is None


def test_missing_project_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    entry = Entry("rules", "python -m services.rules.main")
    assert missing_module(tmp_path, entry) == "services.rules.main"


def test_installed_modules_and_plain_commands_are_not_missing(tmp_path: Path) -> None:
    assert missing_module(tmp_path, Entry("web", "python -m http.server")) is None
    assert missing_module(tmp_path, Entry("sleep", "sleep 5")) is None
    assert missing_module(tmp_path, Entry("x", "python -m no_such_module_here")) == (
        "no_such_module_here"
    )


def test_project_procfile_runs_every_service_with_a_known_http_port() -> None:
    entries = load(PROJECT_DIR / "Procfile")
    assert {entry.name for entry in entries} == set(SERVICE_HTTP_PORTS)
    assert all(entry.module and entry.module.startswith("services.") for entry in entries)
