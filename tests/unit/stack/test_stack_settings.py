"""Stack settings: paths derived from the state folder, ports from the environment."""

from pathlib import Path

import pytest

from services.cli.stack.lifecycle import infra_environment
from services.cli.stack.settings import SERVICE_HTTP_PORTS, StackSettings


def test_state_lives_under_the_project_by_default(tmp_path: Path) -> None:
    settings = StackSettings(project_dir=tmp_path)
    assert settings.state == (tmp_path / ".stack").resolve()
    assert settings.logs_dir == settings.state / "logs"
    assert settings.env_file == settings.state / "env"
    assert settings.procfile == (tmp_path / "Procfile").resolve()


def test_service_ports_come_from_service_prefixed_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_HTTP_PORT", "18000")
    monkeypatch.setenv("STACK_KAFKA_PORT", "19999")
    settings = StackSettings()
    assert settings.http_port("gateway") == 18000
    assert settings.http_port("rules") == SERVICE_HTTP_PORTS["rules"]
    assert settings.http_port("unknown") is None
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19999"


def test_processes_get_infra_variables_and_their_ports(tmp_path: Path) -> None:
    settings = StackSettings(
        project_dir=tmp_path,
        kafka_port=29092,
        postgres_port=25432,
        database_url=None,
        topic_prefix="dev.",
    )
    environment = infra_environment(settings)
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:29092"
    assert (
        environment["DATABASE_URL"] == "postgresql+asyncpg://postgres@127.0.0.1:25432/loan_engine"
    )
    assert environment["TOPIC_PREFIX"] == "dev."
    assert environment["STORAGE_ROOT"] == str(tmp_path.resolve() / ".stack" / "storage")
    state = tmp_path.resolve() / ".stack" / "state"
    assert environment["INGEST_STATE_DIR"] == str(state / "ingest")
    assert environment["SCORING_STATE_DIR"] == str(state / "scoring")
    assert environment["PROJECTOR_HTTP_PORT"] == "8105"
    assert environment["GATEWAY_PROJECTOR_HTTP_PORT"] == "8105"
    assert environment["JOBS_HTTP_PORT"] == "8107"
    assert environment["GATEWAY_JOBS_HTTP_PORT"] == "8107"


def test_a_given_database_url_replaces_the_private_cluster(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://app:pw@db:5432/loans"
    settings = StackSettings(project_dir=tmp_path, database_url=url)
    assert infra_environment(settings)["DATABASE_URL"] == url


def test_the_review_jobs_port_is_read_from_the_gateways_prefixed_name_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOBS_HTTP_PORT", raising=False)
    monkeypatch.setenv("GATEWAY_JOBS_HTTP_PORT", "18107")
    assert StackSettings().http_port("jobs") == 18107
