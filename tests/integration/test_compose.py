"""docker-compose.yml means what it says, checked without Docker: the file is interpolated as
compose does (`${VAR:?message}` refuses to go on without VAR), every service's settings object
builds from the environment its container gets (the image's ENV, then the compose environment),
every address a service is given names a compose service on a port it listens on, migrations
run before anything uses the database, the first admin is configured, whatever a service writes
lies on a volume its user owns, and Prometheus and Grafana talk to compose hosts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.cli.stack.migrations import MIGRATIONS
from services.cli.stack.procfile import Entry, load, module_path
from services.cli.stack.settings import PROJECT_DIR, SERVICE_HTTP_PORTS
from services.cli.stack.supervision import API_PROGRAMS
from services.common.settings import ServiceSettings
from services.gateway.app import WEB_DIST
from services.gateway.settings import GatewaySettings
from services.ingest.settings import IngestSettings
from services.pricing.settings import PricingSettings
from services.reporting.settings import ReportingSettings
from services.rules.settings import RulesSettings
from services.scoring.settings import ScoringSettings

pytestmark = pytest.mark.integration

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
DOCKERFILE = "infra/docker/Dockerfile"
INFRASTRUCTURE = {"kafka", "postgres", "minio", "prometheus", "grafana"}
# What an operator puts in `.env` beside the compose file (the two required secrets).
OPERATOR_ENV = {
    "GATEWAY_JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs256-signing",
    "GATEWAY_ADMIN_PASSWORD": "first-admin-password",
}
# The settings each built service reads (the migration job runs both services' Alembic envs).
SETTINGS: dict[str, tuple[type[ServiceSettings], ...]] = {
    "gateway": (GatewaySettings,),
    "projector": (GatewaySettings,),
    "jobs": (GatewaySettings,),
    "ingest": (IngestSettings,),
    "rules": (RulesSettings,),
    "pricing": (PricingSettings,),
    "reporting": (ReportingSettings,),
    "scoring": (ScoringSettings,),
    "migrate": (GatewaySettings, ReportingSettings),
    "topics": (ServiceSettings,),
}
# Ports the third-party images listen on by default.
IMAGE_PORTS = {"postgres": {5432}, "prometheus": {9090}, "grafana": {3000}}
# The variable a process reads its health port from (the projector and the review jobs read the
# gateway's settings).
HTTP_PORT_VARIABLES = {
    "projector": "GATEWAY_PROJECTOR_HTTP_PORT",
    "jobs": "GATEWAY_JOBS_HTTP_PORT",
}
# Read by libraries, not by a settings object (boto3 finds its credentials in the environment).
LIBRARY_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
DATABASE_USERS = ("gateway", "projector", "jobs", "reporting", "ingest", "rules", "pricing")


# --- compose's interpolation ----------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class MissingVariable(ValueError):
    """A `${VAR:?message}` whose variable is unset or empty."""


def interpolate(text: str, environment: Mapping[str, str]) -> str:
    """`text` with `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
    `${VAR:+alt}` and `$$` resolved the way docker compose resolves them."""

    def resolve(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = environment.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?"):
            if empty:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    return _VARIABLE.sub(resolve, text)


def _interpolated(node: Any, environment: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, environment)
    if isinstance(node, list):
        return [_interpolated(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, environment) for key, value in node.items()}
    return node


def compose(environment: Mapping[str, str] = OPERATOR_ENV) -> dict[str, Any]:
    """The compose file as docker compose sees it once interpolated from `environment`."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return _interpolated(raw, environment)


def built_services() -> dict[str, dict[str, Any]]:
    """Services built from the project's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if isinstance(service.get("build"), dict)
    }


# --- the image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (PROJECT_DIR / DOCKERFILE).read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def image_environment() -> dict[str, str]:
    """The image's ENV (`NAME=value` pairs)."""
    environment: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def image_user() -> tuple[str, int]:
    """The name and uid of the user the image runs as."""
    user = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"][-1]
    run = " ".join(
        arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"
    )
    created = re.search(rf"useradd [^&]*--uid (\d+)[^&]* {re.escape(user)}\b", run)
    assert created, f"the Dockerfile runs as {user} but never creates that user with a uid"
    return user, int(created.group(1))


def directories_owned_by(user: str) -> set[PurePosixPath]:
    """Directories the image creates (`mkdir -p`) and hands to `user` (`chown [-R] user ...`)."""
    run = " ".join(
        arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"
    )
    created: set[PurePosixPath] = set()
    owned: set[PurePosixPath] = set()
    trees: set[PurePosixPath] = set()
    for command in re.split(r"&&|;", run):
        words = shlex.split(command)
        arguments = [word for word in words[1:] if not word.startswith("-")]
        if words[:1] == ["mkdir"]:
            for path in map(PurePosixPath, arguments):
                created.update((path, *path.parents))
        if words[:1] == ["chown"] and arguments and arguments[0].split(":")[0] == user:
            paths = {PurePosixPath(path) for path in arguments[1:]}
            (trees if {"-R", "--recursive"} & set(words) else owned).update(paths)
    return {
        path
        for path in created
        if path in owned or any(path.is_relative_to(tree) for tree in trees)
    }


# --- the containers -------------------------------------------------------------------------


def container_environment(service: dict[str, Any]) -> dict[str, str]:
    """What a built service's process sees: the image's ENV, then the compose environment."""
    given = service.get("environment", {})
    if isinstance(given, list):
        given = dict(item.split("=", 1) for item in given)
    return {**image_environment(), **{name: str(value) for name, value in given.items()}}


def build_settings(
    settings_class: type[BaseSettings],
    environment: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> Any:
    """A settings object built from exactly `environment` (no `.env`, nothing of this process)."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.chdir(workdir)
        return settings_class()


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, PurePosixPath]]:
    """(source, target) of every volume of a service (short syntax)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts.append((source, PurePosixPath(target)))
    return mounts


def listening_ports(name: str, service: dict[str, Any]) -> set[int]:
    """The ports a compose service listens on inside the compose network."""
    if isinstance(service.get("build"), dict):
        environment = container_environment(service)
        variable = HTTP_PORT_VARIABLES.get(name, f"{name.upper()}_HTTP_PORT")
        return {int(environment[variable])} if name in SERVICE_HTTP_PORTS else set()
    environment = service.get("environment", {})
    if "KAFKA_LISTENERS" in environment:
        return {
            int(listener.rsplit(":", 1)[1])
            for listener in environment["KAFKA_LISTENERS"].split(",")
        }
    if name == "minio":
        command = " ".join(service["command"])
        return {9000} | {int(port) for port in re.findall(r"--console-address :(\d+)", command)}
    return IMAGE_PORTS.get(name, set())


def assert_names_a_compose_service(address: str, what: str) -> None:
    """`address` (`host:port` or a URL) is a compose service on a port it listens on."""
    services = compose()["services"]
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    assert parts.hostname in services, f"{what}: {parts.hostname} is not a compose service"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    ports = listening_ports(parts.hostname, services[parts.hostname])
    assert port in ports, f"{what}: {parts.hostname} listens on {sorted(ports)}, not {port}"


# --- tests ----------------------------------------------------------------------------------


def test_docker_compose_accepts_the_file_where_the_plugin_exists() -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker not installed; every check below reads the file itself")
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **OPERATOR_ENV},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_a_required_secret_and_says_which(missing: str) -> None:
    environment = {name: value for name, value in OPERATOR_ENV.items() if name != missing}
    with pytest.raises(MissingVariable, match=missing):
        compose(environment)


def test_no_secret_of_the_api_is_committed_in_the_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in OPERATOR_ENV:
        assert re.search(rf"{name}: \$\{{{name}:\?[^}}]+\}}", text), name


def test_runs_the_infrastructure_and_every_procfile_process() -> None:
    services = set(compose()["services"])
    assert services >= INFRASTRUCTURE
    assert services >= {entry.name for entry in load(PROJECT_DIR / "Procfile")}


def test_every_built_service_uses_the_one_dockerfile_and_runs_a_module_of_this_repository() -> None:
    assert (PROJECT_DIR / DOCKERFILE).is_file()
    for name, service in built_services().items():
        assert service["build"] == {"context": ".", "dockerfile": DOCKERFILE}, name
        command = service["command"]
        assert command[:2] == ["python", "-m"], name
        assert module_path(PROJECT_DIR, command[2]) is not None, f"{name}: no {command[2]}"


def test_the_api_gets_a_larger_cpu_share_than_every_batch_service_as_in_the_local_stack() -> None:
    services = built_services()
    api = {name for name in services if name in API_PROGRAMS}
    assert api == set(API_PROGRAMS)
    batch_shares = {services[name]["cpu_shares"] for name in services.keys() - api}
    assert max(batch_shares) < min(services[name]["cpu_shares"] for name in api)


def test_services_run_the_same_modules_as_the_procfile() -> None:
    services = built_services()
    for entry in load(PROJECT_DIR / "Procfile"):
        command = " ".join(services[entry.name]["command"])
        assert Entry(entry.name, command).module == entry.module, entry.name


def test_every_built_service_has_a_settings_object_to_build() -> None:
    assert set(built_services()) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_settings_object_builds_from_the_containers_environment(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = container_environment(built_services()[name])
    for settings_class in SETTINGS[name]:
        settings = build_settings(settings_class, environment, monkeypatch, tmp_path)
        assert settings.environment == "production"
        assert_names_a_compose_service(settings.kafka_bootstrap_servers, f"{name} kafka")
        assert_names_a_compose_service(settings.database_dsn, f"{name} database")
        if settings.storage_type == "s3":
            assert settings.s3_endpoint_url is not None
            assert_names_a_compose_service(settings.s3_endpoint_url, f"{name} storage")
        if name in SERVICE_HTTP_PORTS:
            # Beyond loopback, so the health check and Prometheus reach it.
            assert settings.http_host == "0.0.0.0", name


# The setting a process reads its health port from, where it is not `http_port`.
PORT_SETTINGS = {"projector": "projector_http_port", "jobs": "jobs_http_port"}


def served_port(name: str, settings: Any) -> int:
    """The port a service's process listens on, as its own settings say."""
    return int(getattr(settings, PORT_SETTINGS.get(name, "http_port")))


@pytest.mark.parametrize("name", sorted(set(SETTINGS) & set(SERVICE_HTTP_PORTS)))
def test_every_service_listens_where_its_healthcheck_and_prometheus_look(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = built_services()[name]
    settings = build_settings(
        SETTINGS[name][0], container_environment(service), monkeypatch, tmp_path
    )
    port = served_port(name, settings)
    assert port == SERVICE_HTTP_PORTS[name]
    assert f"127.0.0.1:{port}/health/ready" in " ".join(service["healthcheck"]["test"])
    assert listening_ports(name, service) == {port}


def variables_read(settings_class: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads (its prefixed field names and aliases)."""
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices is not None:
            names.update(str(choice).upper() for choice in choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_every_variable_compose_sets_is_read_by_some_service() -> None:
    read = set(LIBRARY_VARIABLES)
    for classes in SETTINGS.values():
        for settings_class in classes:
            read |= variables_read(settings_class)
    for name, service in built_services().items():
        unused = sorted(set(service.get("environment", {})) - read)
        assert not unused, f"{name} is given {unused}, which no service reads"


def test_the_image_builds_the_console_the_gateway_serves_at_its_root() -> None:
    instructions = dockerfile_instructions()
    stages = [arguments.split() for keyword, arguments in instructions if keyword == "FROM"]
    node = next(stage[-1] for stage in stages if stage[0].startswith("node:"))
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any("npm ci" in command for command in runs)
    assert any("npm run build" in command for command in runs)
    copies = [arguments.split() for keyword, arguments in instructions if keyword == "COPY"]
    served = PurePosixPath("/app") / WEB_DIST.relative_to(PROJECT_DIR).as_posix()
    assert [f"--from={node}", "/web/dist", str(served)] in copies
    # After the console stage, so the final image is the Python one that serves it.
    assert not stages[-1][0].startswith("node:")
    ignored = (PROJECT_DIR / f"{DOCKERFILE}.dockerignore").read_text().splitlines()
    assert {"web/node_modules", "web/dist"} <= set(ignored)  # no host build leaks in


def test_every_address_in_a_built_services_environment_names_a_compose_service() -> None:
    for name, service in built_services().items():
        for variable, value in container_environment(service).items():
            if "://" in value or variable.endswith("BOOTSTRAP_SERVERS"):
                for address in value.split(","):
                    assert_names_a_compose_service(address, f"{name} {variable}")


def test_the_gateway_signs_tokens_with_the_operators_secret_and_creates_the_first_admin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = container_environment(built_services()["gateway"])
    settings = build_settings(GatewaySettings, environment, monkeypatch, tmp_path)
    assert settings.signing_key == OPERATOR_ENV["GATEWAY_JWT_SECRET"]
    assert settings.admin_username == "admin"
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == OPERATOR_ENV["GATEWAY_ADMIN_PASSWORD"]


def test_migrations_run_once_before_every_service_that_uses_the_database() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"][-2:] == ["stack", "migrate"]
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    alembic = (PROJECT_DIR / "alembic.ini").read_text(encoding="utf-8")
    for migration in MIGRATIONS:
        assert f"[{migration.section}]" in alembic, migration.name
    for name in DATABASE_USERS:
        rule = services[name]["depends_on"]["migrate"]
        assert rule["condition"] == "service_completed_successfully", name


def test_whatever_a_service_writes_lies_on_a_volume_its_user_owns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user, uid = image_user()
    assert uid != 0
    owned = directories_owned_by(user)
    declared = set(compose().get("volumes", {}))
    for name, service in built_services().items():
        environment = container_environment(service)
        writable: list[PurePosixPath] = []
        for settings_class in SETTINGS[name]:
            settings = build_settings(settings_class, environment, monkeypatch, tmp_path)
            if settings.storage_type == "local":
                writable.append(PurePosixPath(settings.storage_root))
            if isinstance(settings, IngestSettings | ScoringSettings):
                writable.append(PurePosixPath(settings.state_dir))
        mounts = volume_mounts(service)
        for source, target in mounts:
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
                assert target in owned, f"{name}: {target} is not created owned by {user}"
        for path in writable:
            assert path.is_absolute(), f"{name}: {path} is relative to /app, which root owns"
            assert any(path.is_relative_to(target) for _, target in mounts), (
                f"{name}: {path} is on no volume"
            )
            assert any(path.is_relative_to(directory) for directory in owned), (
                f"{name}: {path} is not owned by {user}"
            )


def test_ingest_keeps_its_state_on_its_own_volume() -> None:
    ingest = built_services()["ingest"]
    assert ("ingest-state", PurePosixPath("/data/state")) in volume_mounts(ingest)


def _mounted_file(service: dict[str, Any], target: str) -> Path:
    """The project file a service sees at `target` (a file or folder bind mount)."""
    wanted = PurePosixPath(target)
    for source, mounted in volume_mounts(service):
        if source.startswith("./") and wanted.is_relative_to(mounted):
            path = PROJECT_DIR / source / wanted.relative_to(mounted)
            if path.exists():
                return path
    raise AssertionError(f"nothing of the project is mounted at {target}")


def test_prometheus_scrapes_every_service_by_its_compose_name() -> None:
    prometheus = compose()["services"]["prometheus"]
    config_path = next(
        flag.split("=", 1)[1] for flag in prometheus["command"] if flag.startswith("--config.file")
    )
    config = yaml.safe_load(_mounted_file(prometheus, config_path).read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICE_HTTP_PORTS)
    for name, job in jobs.items():
        (target,) = [t for group in job["static_configs"] for t in group["targets"]]
        assert target == f"{name}:{SERVICE_HTTP_PORTS[name]}"
        assert_names_a_compose_service(target, f"prometheus job {name}")
    for rules in config.get("rule_files", []):
        _mounted_file(prometheus, str(PurePosixPath(config_path).parent / rules))


def test_grafanas_datasource_is_the_prometheus_service_and_its_dashboards_are_mounted() -> None:
    grafana = compose()["services"]["grafana"]
    provisioning = grafana["environment"]["GF_PATHS_PROVISIONING"]
    folder = _mounted_file(grafana, f"{provisioning}/datasources")
    sources = [
        source
        for path in sorted(folder.glob("*.yml"))
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    ]
    assert sources
    for source in sources:
        assert_names_a_compose_service(source["url"], f"grafana datasource {source['name']}")
    providers = _mounted_file(grafana, f"{provisioning}/dashboards")
    for path in sorted(providers.glob("*.yml")):
        for provider in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]:
            folder_path = interpolate(provider["options"]["path"], grafana["environment"])
            dashboards = _mounted_file(grafana, folder_path)
            assert list(dashboards.glob("*.json")), folder_path


def test_every_long_running_service_has_a_healthcheck_on_its_own_port() -> None:
    for name, service in compose()["services"].items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, name
        if name in SERVICE_HTTP_PORTS:
            probe = " ".join(service["healthcheck"]["test"])
            assert f"127.0.0.1:{SERVICE_HTTP_PORTS[name]}/health/ready" in probe, name


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


def test_interpolation_follows_composes_rules() -> None:
    environment = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET}-$$HOME", environment) == "value--$HOME"
    assert interpolate("${EMPTY:-fallback}|${EMPTY-kept}", environment) == "fallback|"
    assert interpolate("${SET:+alt}|${UNSET:+alt}", environment) == "alt|"
    with pytest.raises(MissingVariable, match="EMPTY is missing a value: say so"):
        interpolate("${EMPTY:?say so}", environment)
    assert interpolate("${EMPTY?fine}", environment) == ""
