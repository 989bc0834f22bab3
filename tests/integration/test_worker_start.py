"""A worker, once started against a real broker, has settled its heap for batch work."""

import gc
from collections.abc import Iterator

import pytest

from services.common.consumer import GC_THRESHOLDS
from services.common.runtime import build_worker_app, make_broker
from services.common.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def collector_state() -> Iterator[None]:
    """Put the test process's collector back as it was."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_state")
async def test_a_started_worker_freezes_its_start_up_heap_and_collects_rarely(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    settings = ServiceSettings(
        service_name="pricing",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topic_prefix,
    )
    app = build_worker_app(settings, make_broker(settings))
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)

    await app.start()
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        await app.stop()
