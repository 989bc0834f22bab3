"""The Kafka node's configuration and cluster id."""

import shutil
from pathlib import Path

import pytest

from services.cli.stack.kafka import (
    class_sharing_options,
    jars_present,
    new_cluster_id,
    render_server_properties,
)


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_node_is_one_combined_broker_and_controller_on_loopback() -> None:
    config = properties(render_server_properties(9092, 9093, Path("/data/kafka")))
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert config["log.dirs"] == "/data/kafka"


def test_quorum_uses_bootstrap_servers_and_never_static_voters() -> None:
    config = properties(render_server_properties(29092, 29093, Path("/d")))
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert "controller.quorum.voters" not in config


def test_local_node_keeps_group_coordination_fast() -> None:
    config = properties(render_server_properties(9092, 9093, Path("/d")))
    assert config["offsets.topic.num.partitions"] == "3"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    assert config["offsets.topic.replication.factor"] == "1"


def test_topics_are_never_created_by_accident() -> None:
    config = properties(render_server_properties(9092, 9093, Path("/d")))
    assert config["auto.create.topics.enable"] == "false"


def test_cluster_id_is_url_safe_base64_of_sixteen_bytes_without_padding() -> None:
    assert new_cluster_id(lambda size: bytes(range(size))) == "AAECAwQFBgcICQoLDA0ODw"
    generated = new_cluster_id()
    assert len(generated) == 22
    assert set(generated) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cluster_id_that_would_begin_with_a_dash_is_drawn_again() -> None:
    # The storage tool reads `-t -xyz...` as a missing id followed by an option: a fresh stack
    # failed to format one time in 64 before ids were drawn as Kafka's Uuid.randomUuid() does.
    draws = iter([b"\xf8" + bytes(15), bytes(range(16))])
    assert new_cluster_id(lambda _size: next(draws)) == "AAECAwQFBgcICQoLDA0ODw"


def test_no_generated_cluster_id_begins_with_a_dash() -> None:
    assert not any(new_cluster_id().startswith("-") for _ in range(2_000))


def test_cluster_ids_differ_between_calls() -> None:
    assert new_cluster_id() != new_cluster_id()


def test_jar_cache_counts_only_when_broker_server_and_tools_jars_are_there(tmp_path: Path) -> None:
    for jar in ("kafka_2.13-4.1.1.jar", "kafka-server-4.1.1.jar"):
        (tmp_path / jar).touch()
    assert not jars_present(tmp_path, "4.1.1")
    (tmp_path / "kafka-tools-4.1.1.jar").touch()
    assert jars_present(tmp_path, "4.1.1")
    assert not jars_present(tmp_path, "4.2.0")


def test_without_an_archive_the_broker_writes_one_beside_it_and_the_format_tool_none(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "kafka-classes.jsa"
    assert class_sharing_options("java", tmp_path, archive, dump=True) == [
        f"-XX:ArchiveClassesAtExit={tmp_path / 'kafka-classes.new'}"
    ]
    assert class_sharing_options("java", tmp_path, archive, dump=False) == []


def test_an_archive_in_the_cache_is_mapped(tmp_path: Path) -> None:
    archive = tmp_path / "kafka-classes.jsa"
    archive.write_bytes(b"archive")
    assert class_sharing_options("java", tmp_path, archive, dump=True) == [
        f"-XX:SharedArchiveFile={archive}",
        "-Xshare:auto",
    ]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JVM to check an archive")
def test_a_new_archive_the_jvm_cannot_map_is_thrown_away_never_used(tmp_path: Path) -> None:
    archive = tmp_path / "kafka-classes.jsa"
    archive.with_suffix(".new").write_bytes(b"cut short by a kill -9")
    options = class_sharing_options(str(shutil.which("java")), tmp_path, archive, dump=True)
    assert options == [f"-XX:ArchiveClassesAtExit={archive.with_suffix('.new')}"]
    assert not archive.exists() and not archive.with_suffix(".new").exists()
