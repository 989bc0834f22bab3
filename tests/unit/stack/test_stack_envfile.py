"""The `.stack/env` file."""

import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from services.cli.stack.envfile import read, render, write


def test_renders_sorted_single_quoted_key_value_lines() -> None:
    assert render({"TOPIC_PREFIX": "loan-engine.", "DATABASE_URL": "postgresql://x"}) == (
        "DATABASE_URL='postgresql://x'\nTOPIC_PREFIX='loan-engine.'\n"
    )


def test_python_dotenv_reads_back_exactly_what_was_written(tmp_path: Path) -> None:
    values = {
        "A": "1",
        "B": "postgresql+asyncpg://u:p%40ss#1@h:1/d?x=y",
        "C": "it's a \\path with $HOME and spaces ",
    }
    path = tmp_path / "env"
    write(path, values)
    assert dotenv_values(path, interpolate=False) == values
    assert read(path) == values


def test_refuses_multi_line_values() -> None:
    with pytest.raises(ValueError, match="one line"):
        render({"A": "1\n2"})


def test_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "stack" / "env"
    write(path, {"DATABASE_URL": "postgresql://u:secret@h/d"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read(path) == {"DATABASE_URL": "postgresql://u:secret@h/d"}


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert read(tmp_path / "env") == {}
