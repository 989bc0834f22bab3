"""The status report: the exact JSON shape of SPEC §6, and the table for people."""

import json

from services.cli.stack.status import ProcessStatus, StackStatus


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


def test_json_has_exactly_the_keys_the_spec_names() -> None:
    document = report().to_json()
    assert set(document) == {"kafka", "postgres", "gateway_url", "processes"}
    assert set(document["kafka"]) == {"bootstrap_servers", "healthy"}
    assert set(document["postgres"]) == {"url", "healthy"}
    for process in document["processes"]:
        assert set(process) == {"name", "pid", "state", "health_url", "metrics_url"}


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
