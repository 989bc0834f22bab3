"""The console script's command surface."""

from typer.testing import CliRunner

from services.cli.main import app

runner = CliRunner()


def test_loan_engine_offers_the_stack_commands() -> None:
    result = runner.invoke(app, ["stack", "--help"])
    assert result.exit_code == 0
    for command in ("up", "down", "status", "logs"):
        assert command in result.output


def test_logs_of_an_unknown_process_is_bad_usage(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("STACK_STATE_DIR", str(tmp_path))
    result = runner.invoke(app, ["stack", "logs", "nothing"])
    assert result.exit_code == 2
