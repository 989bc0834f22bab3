"""`loan-engine run` and `runs ...`: bad usage exits 2 before anything is published."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
import typer
from typer.testing import CliRunner

from services.cli.client import RunView
from services.cli.main import app
from services.cli.pipeline import exit_code, parse_irr_target, parse_pdate, same_names


@pytest.mark.parametrize("text", ["0", "100", "-1", "abc", "NaN", "Infinity"])
def test_an_irr_target_outside_zero_to_a_hundred_is_bad_usage(text: str) -> None:
    with pytest.raises(typer.Exit) as raised:
        parse_irr_target(text, Decimal("8.05"))

    assert raised.value.exit_code == 2


def test_an_irr_target_is_read_as_an_exact_decimal() -> None:
    assert parse_irr_target("8.0500", Decimal("8.05")) == Decimal("8.0500")
    assert parse_irr_target(None, Decimal("8.05")) == Decimal("8.05")


def test_a_purchase_date_is_iso_8601() -> None:
    assert parse_pdate("2026-11-23") == date(2026, 11, 23)
    with pytest.raises(typer.Exit) as raised:
        parse_pdate("23/11/2026")
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    "arguments",
    [
        ["run", "--irr-target", "150"],
        ["run", "--pdate", "tomorrow"],
        ["run", "--folder", "../outside"],
        ["run", "/no/such/tape.csv"],
        ["run", "--folder", "x", "--wait", "-5"],
        ["runs", "show", "not-a-uuid"],
        ["runs", "wait", str(uuid4()), "--timeout", "-1"],
        ["runs", "wait", "not-a-uuid"],
    ],
)
def test_bad_usage_exits_with_code_two(arguments: list[str]) -> None:
    result = CliRunner().invoke(app, arguments)

    assert result.exit_code == 2, result.output


def test_only_a_completed_run_exits_zero() -> None:
    run_id = uuid4()
    assert exit_code(RunView(run_id, status="completed")) == 0
    assert exit_code(RunView(run_id, status="failed")) == 1
    assert exit_code(RunView(run_id, status="running")) == 1
    assert exit_code(None) == 1


def test_files_that_would_land_on_one_name_in_the_folder_are_bad_usage(tmp_path: Path) -> None:
    # The folder keeps file names only: a second `tape.csv` would silently replace the first.
    for seller in ("a", "b"):
        (tmp_path / seller).mkdir()
        (tmp_path / seller / "tape.csv").write_text("seller_loan_number\n1\n", encoding="utf-8")
    first, second = tmp_path / "a" / "tape.csv", tmp_path / "b" / "tape.csv"

    result = CliRunner().invoke(app, ["run", str(first), str(second), "--folder", "x"])

    assert result.exit_code == 2, result.output
    assert f"{first}, {second}" in result.output


def test_same_names_lists_each_clash_and_nothing_when_names_differ() -> None:
    assert same_names([Path("a/t.csv"), Path("b/u.csv")]) == ""
    assert same_names([Path("a/t.csv"), Path("b/t.csv"), Path("c/u.csv"), Path("u.csv")]) == (
        "a/t.csv, b/t.csv; c/u.csv, u.csv"
    )
