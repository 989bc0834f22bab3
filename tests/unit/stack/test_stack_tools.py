"""Finding tools and free ports, migrations to run, monitoring that can run."""

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.stack.errors import DownloadFailed, MissingTool, PortTaken
from services.cli.stack.kafka import java_path, resolve_jars
from services.cli.stack.migrations import Migration, pending
from services.cli.stack.monitoring import grafana, prometheus
from services.cli.stack.ports import port_is_free, require_free
from services.cli.stack.postgres import blocking_folder, find_bin_dir
from services.cli.stack.settings import StackSettings


def fake_bin(root: Path, version: str) -> Path:
    folder = root / version / "bin"
    folder.mkdir(parents=True)
    (folder / "initdb").touch()
    (folder / "pg_ctl").touch()
    return folder


def test_newest_postgresql_with_initdb_and_pg_ctl_is_chosen(tmp_path: Path) -> None:
    old, new = fake_bin(tmp_path, "13"), fake_bin(tmp_path, "15")
    incomplete = tmp_path / "16" / "bin"
    incomplete.mkdir(parents=True)
    (incomplete / "initdb").touch()
    assert find_bin_dir([new, incomplete, old]) == new
    assert find_bin_dir([incomplete]) is None


def test_port_taken_names_the_setting_to_change() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(PortTaken, match=f"port {port} needed by Kafka .* STACK_KAFKA_PORT"):
            require_free(port, "Kafka", "STACK_KAFKA_PORT")
    assert port_is_free(port)


def test_only_migrations_whose_config_exists_are_run(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").touch()
    wanted = (
        Migration("gateway", "alembic.ini", "gateway"),
        Migration("reporting", "reporting.ini", "reporting"),
    )
    assert pending(tmp_path, wanted) == [wanted[0]]


def test_monitoring_says_what_is_missing_instead_of_starting(tmp_path: Path) -> None:
    settings = StackSettings(project_dir=tmp_path)
    assert prometheus(settings).argv is None
    assert "infra/prometheus/prometheus.yml" in (prometheus(settings).missing or "")
    assert "infra/grafana" in (grafana(settings).missing or "")


def test_prometheus_runs_with_the_project_config_on_its_port(tmp_path: Path) -> None:
    (tmp_path / "infra" / "prometheus").mkdir(parents=True)
    (tmp_path / "infra" / "prometheus" / "prometheus.yml").write_text("scrape_configs: []\n")
    monitor = prometheus(StackSettings(project_dir=tmp_path, prometheus_port=19090))
    if monitor.argv is None:
        pytest.skip(f"prometheus not installed here: {monitor.missing}")
    assert f"--config.file={tmp_path}/infra/prometheus/prometheus.yml" in monitor.argv
    assert "--web.listen-address=127.0.0.1:19090" in monitor.argv
    assert monitor.health_url() == "http://127.0.0.1:19090/-/healthy"


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder every user can reach (pytest's own tmp root is private)."""
    folder = Path(tempfile.mkdtemp(prefix="stack-unit-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_private_parent_folder_blocks_another_user(open_tmp: Path) -> None:
    tmp_path = open_tmp
    private = tmp_path / "home"
    (private / "project").mkdir(parents=True)
    private.chmod(0o700)
    tmp_path.chmod(0o755)
    try:
        assert blocking_folder(private / "project", uid=4242, gids={4242}) == private
        assert blocking_folder(tmp_path, uid=4242, gids={4242}) is None
    finally:
        private.chmod(0o755)


def test_the_owner_of_a_private_folder_may_traverse_it(open_tmp: Path) -> None:
    tmp_path = open_tmp
    private = tmp_path / "home"
    private.mkdir()
    tmp_path.chmod(0o755)
    owner = os.getuid()
    if owner == 0:
        owner = 4242
        os.chown(private, owner, owner)
    private.chmod(0o700)
    assert blocking_folder(private, uid=owner, gids=set()) is None
    assert blocking_folder(private, uid=owner + 1, gids=set()) == private


def test_root_traverses_every_folder(tmp_path: Path) -> None:
    private = tmp_path / "home"
    private.mkdir()
    private.chmod(0o700)
    assert blocking_folder(private, uid=0, gids=set()) is None


def fake_maven(folder: Path, output: str) -> Path:
    script = folder / "mvn"
    script.write_text(f"#!/bin/sh\necho '{output}'\nexit 1\n")
    script.chmod(0o755)
    return script


def test_missing_java_says_what_to_install(tmp_path: Path) -> None:
    settings = StackSettings(project_dir=tmp_path, java_command=str(tmp_path / "no-java"))
    with pytest.raises(MissingTool, match="apt-get install -y openjdk-17-jre-headless"):
        java_path(settings)


def test_unreachable_maven_central_is_reported_as_such(tmp_path: Path) -> None:
    maven = fake_maven(
        tmp_path, "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13:4.1.1"
    )
    settings = StackSettings(
        project_dir=tmp_path, cache_dir=tmp_path / "cache", maven_command=str(maven)
    )
    with pytest.raises(DownloadFailed, match="Maven Central is unreachable"):
        resolve_jars(settings, lambda _: None)
    assert not (tmp_path / "cache" / "kafka-4.1.1" / "libs").exists()


def test_other_maven_failures_show_what_maven_said(tmp_path: Path) -> None:
    maven = fake_maven(tmp_path, "[ERROR] The goal you specified requires a project")
    settings = StackSettings(
        project_dir=tmp_path, cache_dir=tmp_path / "cache", maven_command=str(maven)
    )
    with pytest.raises(DownloadFailed, match="requires a project"):
        resolve_jars(settings, lambda _: None)


def test_cached_jars_are_reused_without_maven(tmp_path: Path) -> None:
    libs = tmp_path / "cache" / "kafka-4.1.1" / "libs"
    libs.mkdir(parents=True)
    for jar in ("kafka_2.13-4.1.1.jar", "kafka-server-4.1.1.jar", "kafka-tools-4.1.1.jar"):
        (libs / jar).touch()
    settings = StackSettings(
        project_dir=tmp_path, cache_dir=tmp_path / "cache", maven_command=str(tmp_path / "none")
    )
    assert resolve_jars(settings, lambda _: None) == libs
