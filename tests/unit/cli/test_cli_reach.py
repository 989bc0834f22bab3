"""How the CLI tells an unreachable broker or database: one line, what was tried, what to do."""

import asyncpg
import pytest
import typer
from aiokafka.errors import KafkaConnectionError

from services.cli import reach


def test_connection_failures_and_a_missing_database_are_database_errors() -> None:
    assert reach.is_database_error(ConnectionRefusedError(111, "Connect call failed"))
    assert reach.is_database_error(asyncpg.InvalidCatalogNameError("no such database"))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = asyncpg.InvalidPasswordError("password authentication failed")
    assert reach.is_database_error(wrapped)


def test_a_constraint_violation_is_no_database_outage() -> None:
    assert not reach.is_database_error(asyncpg.UniqueViolationError("duplicate key"))
    assert not reach.is_database_error(ValueError("bad input"))


def test_the_reason_names_the_error_once_on_one_line() -> None:
    error = KafkaConnectionError("Unable to bootstrap\nmore")  # its str() names the class
    assert reach.reason(error) == "KafkaConnectionError: Unable to bootstrap"
    assert reach.reason(TimeoutError()) == "TimeoutError"


def test_an_unreachable_database_names_the_url_without_its_password_and_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as ended:
        reach.database_unreachable(
            "postgresql+asyncpg://app:hunter2@127.0.0.1:55432/loan_engine",
            ConnectionRefusedError(111, "Connect call failed"),
        )
    assert ended.value.exit_code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "postgresql+asyncpg://app:***@127.0.0.1:55432/loan_engine" in lines[0]
    assert "hunter2" not in lines[0] and "loan-engine stack up" in lines[0]


def test_a_database_without_the_schema_is_told_to_migrate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = RuntimeError("relation does not exist")
    missing.__cause__ = asyncpg.UndefinedTableError('relation "gateway.users" does not exist')
    with pytest.raises(typer.Exit):
        reach.database_unreachable("postgresql+asyncpg://u@h:1/d", missing)
    assert "loan-engine stack migrate" in capsys.readouterr().err


def test_guarded_turns_a_kafka_failure_into_one_line_and_lets_other_errors_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broker_down() -> None:
        raise KafkaConnectionError("Unable to bootstrap from 127.0.0.1:1")

    with pytest.raises(typer.Exit):
        reach.guarded(broker_down, bootstrap_servers="127.0.0.1:1", database_url=None)
    assert "cannot reach Kafka at 127.0.0.1:1" in capsys.readouterr().err

    def bug() -> None:
        raise KeyError("a bug stays a bug")

    with pytest.raises(KeyError):
        reach.guarded(bug, bootstrap_servers="127.0.0.1:1", database_url="postgresql://u@h/d")
