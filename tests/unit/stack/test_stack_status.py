"""The status report: the exact JSON shape of SPEC §6, and the table for people."""

import json
from datetime import datetime

from services.cli.stack.restarts import Exit
from services.cli.stack.status import ProcessStatus, StackStatus

KILLED = Exit(
    at=datetime(2026, 12, 6, 22, 40, 5).astimezone(),
    description="terminated by SIGKILL",
    code=None,
    signal="SIGKILL",
    expected=False,
)


def report(
    url: str = "postgresql+asyncpg://app:hunter2@127.0.0.1:55432/loan_engine",
) -> StackStatus:
    return StackStatus(
        kafka_bootstrap_servers="127.0.0.1:9092",
        kafka_healthy=True,
        postgres_url=url,
        postgres_healthy=False,
        gateway_url="http://127.0.0.1:8000",
        processes=(
            ProcessStatus(
                "gateway",
                42,
                "healthy",
                "http://127.0.0.1:8000/health",
                "http://127.0.0.1:8000/metrics",
                restarts=2,
                last_exit=KILLED,
            ),
            ProcessStatus(
                "rules",
                None,
                "failed",
                "http://127.0.0.1:8102/health",
                "http://127.0.0.1:8102/metrics",
                detail="module services.rules.main does not exist",
            ),
        ),
    )


def test_json_has_the_keys_the_spec_names_plus_restarts_and_last_exit() -> None:
    document = report().to_json()
    assert set(document) == {"kafka", "postgres", "gateway_url", "processes"}
    assert set(document["kafka"]) == {"bootstrap_servers", "healthy"}
    assert set(document["postgres"]) == {"url", "healthy"}
    for process in document["processes"]:
        assert set(process) == {
            "name",
            "pid",
            "state",
            "health_url",
            "metrics_url",
            "restarts",
            "last_exit",
        }


def test_json_says_how_often_a_process_was_restarted_and_how_it_last_ended() -> None:
    gateway, rules = report().to_json()["processes"]
    assert gateway["restarts"] == 2
    assert gateway["last_exit"] == {
        "at": KILLED.at.isoformat(timespec="seconds"),
        "code": None,
        "signal": "SIGKILL",
        "expected": False,
        "description": "terminated by SIGKILL",
    }
    assert (rules["restarts"], rules["last_exit"]) == (0, None)


def test_the_table_shows_restarts_and_the_last_exit() -> None:
    table = report().render()
    assert "RESTARTS" in table and "LAST EXIT" in table
    rows = table.splitlines()
    gateway = next(line for line in rows if line.startswith("gateway ") and "42" in line)
    assert " 2 " in gateway and "terminated by SIGKILL at 22:40:05" in gateway


def test_json_carries_health_and_process_states() -> None:
    document = report().to_json()
    assert document["kafka"] == {"bootstrap_servers": "127.0.0.1:9092", "healthy": True}
    assert document["postgres"]["healthy"] is False
    assert document["gateway_url"] == "http://127.0.0.1:8000"
    assert [(p["name"], p["pid"], p["state"]) for p in document["processes"]] == [
        ("gateway", 42, "healthy"),
        ("rules", None, "failed"),
    ]


def test_json_never_shows_the_database_password() -> None:
    text = json.dumps(report().to_json())
    assert "hunter2" not in text
    assert "postgresql+asyncpg://app:***@127.0.0.1:55432/loan_engine" in text


def test_table_names_every_process_and_why_one_failed_without_the_password() -> None:
    table = report().render()
    assert "gateway" in table and "42" in table
    assert "module services.rules.main does not exist" in table
    assert "hunter2" not in table


def test_failed_lists_only_failed_processes() -> None:
    assert [process.name for process in report().failed] == ["rules"]
