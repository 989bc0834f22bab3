"""The projector's fetches: large, and waiting for bytes, so a run is written in few chunks."""

from pathlib import Path

from services.gateway.projector.consumer import consumer_config
from services.gateway.settings import GatewaySettings


def settings(**overrides: object) -> GatewaySettings:
    return GatewaySettings(
        database_url="postgresql+asyncpg://u@localhost/db",
        storage_root=Path("/tmp/unused"),
        jwt_secret="x" * 32,
        **overrides,
    )


def test_a_projector_fetch_waits_for_a_mebibyte_or_a_tenth_of_a_second_by_default() -> None:
    config = consumer_config(settings())
    assert config["fetch_min_bytes"] == 1024 * 1024
    assert config["fetch_max_wait_ms"] == 100


def test_the_fetch_wait_comes_from_the_settings_and_the_consumer_has_no_group() -> None:
    config = consumer_config(
        settings(projector_fetch_min_bytes=1, projector_fetch_wait_ms=0, topic_prefix="p.")
    )
    assert (config["fetch_min_bytes"], config["fetch_max_wait_ms"]) == (1, 0)
    assert config["group_id"] is None
    assert config["enable_auto_commit"] is False


def test_a_fetch_brings_at_most_a_mebibyte_of_a_partition_and_16_in_all_by_default() -> None:
    # The consumer keeps what it fetched of each partition until it is read: behind a backlog of
    # scored batches, 4 MiB a partition (64 MiB a fetch) took a replay to 485 MB, 1 MiB to 300-319.
    config = consumer_config(settings())
    assert config["max_partition_fetch_bytes"] == 1024 * 1024
    assert config["fetch_max_bytes"] == 16 * 1024 * 1024


def test_the_fetch_sizes_come_from_the_settings() -> None:
    config = consumer_config(
        settings(projector_partition_fetch_bytes=4096, projector_fetch_max_bytes=65536)
    )
    assert (config["max_partition_fetch_bytes"], config["fetch_max_bytes"]) == (4096, 65536)
