"""docker-compose.yml: valid, and every service it builds runs a module that exists here."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.stack.procfile import Entry, load, module_path
from services.cli.stack.settings import PROJECT_DIR, SERVICE_HTTP_PORTS

pytestmark = pytest.mark.integration

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
DOCKERFILE = "infra/docker/Dockerfile"
INFRASTRUCTURE = {"kafka", "postgres", "minio", "prometheus", "grafana"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def built_services() -> dict[str, dict[str, Any]]:
    """Services built from the project's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if isinstance(service.get("build"), dict)
    }


def compose_plugin_works() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=20, check=False
    )
    return result.returncode == 0


def test_docker_compose_accepts_the_file_where_the_plugin_exists() -> None:
    if not compose_plugin_works():
        pytest.skip("docker compose plugin not installed; the YAML checks below still run")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_runs_the_infrastructure_and_every_procfile_process() -> None:
    services = set(compose()["services"])
    assert services >= INFRASTRUCTURE
    assert services >= {entry.name for entry in load(PROJECT_DIR / "Procfile")}


def test_kafka_is_a_kraft_node_of_the_pinned_image_that_never_auto_creates_topics() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    environment = kafka["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "topics" in compose()["services"]


def test_every_built_service_uses_the_one_dockerfile() -> None:
    assert (PROJECT_DIR / DOCKERFILE).is_file()
    for name, service in built_services().items():
        assert service["build"] == {"context": ".", "dockerfile": DOCKERFILE}, name
        assert service["image"] == "loan-engine:local", name


@pytest.mark.parametrize("name", sorted(built_services()))
def test_built_service_command_runs_a_module_of_this_repository(name: str) -> None:
    command = built_services()[name]["command"]
    assert command[:2] == ["python", "-m"], command
    module = command[2]
    assert module_path(PROJECT_DIR, module) is not None, f"{name}: no module {module} in the repo"


def test_services_run_the_same_modules_as_the_procfile() -> None:
    services = built_services()
    for entry in load(PROJECT_DIR / "Procfile"):
        command = " ".join(services[entry.name]["command"])
        assert Entry(entry.name, command).module == entry.module, entry.name


def test_services_listen_on_the_stack_ports_and_probe_readiness_there() -> None:
    for name, port in SERVICE_HTTP_PORTS.items():
        service = built_services()[name]
        assert service["environment"][f"{name.upper()}_HTTP_PORT"] == str(port)
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/health/ready" in probe, name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, name


def test_dependencies_exist_and_wait_only_on_what_can_report_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert dependency != name
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"
            if rule["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", dependency


def test_mounted_configuration_folders_are_the_projects_own() -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose()["services"][name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert source.startswith(f"./infra/{name}"), volume
                assert (Path(PROJECT_DIR) / source).resolve().is_relative_to(PROJECT_DIR)
