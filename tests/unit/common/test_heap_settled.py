"""Every long-lived process freezes what its start-up built before it serves.

A full collection of the gateway's start-up heap (~200,000 objects) took 230 ms, every request in
flight waiting: the API's p99 under load was that pause.
"""

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from services.gateway import main as gateway_main
from services.gateway import worker
from services.gateway.projector import main as projector_main
from services.gateway.review import main as jobs_main
from services.scoring import main as scoring_main
from services.scoring.serving import ModelSlot
from services.scoring.settings import ScoringSettings


def ignore(*_args: Any, **_options: Any) -> None:
    return None


@pytest.fixture
def thawed() -> Iterator[list[int]]:
    """Freeze counts seen by the fakes; the test process's collector is restored afterwards."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    seen: list[int] = []
    try:
        yield seen
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_the_api_freezes_its_imports_and_app_before_it_serves(
    monkeypatch: pytest.MonkeyPatch, thawed: list[int]
) -> None:
    monkeypatch.setattr(gateway_main, "configure_logging", ignore)

    def run(*_args: Any, **_options: Any) -> None:
        thawed.append(gc.get_freeze_count())

    monkeypatch.setattr(gateway_main.uvicorn, "run", run)
    gateway_main.main()
    assert thawed and thawed[0] > 0


def test_the_projector_freezes_its_imports_before_it_reads(
    monkeypatch: pytest.MonkeyPatch, thawed: list[int]
) -> None:
    async def serve(_settings: Any) -> None:
        thawed.append(gc.get_freeze_count())

    monkeypatch.setattr(worker, "configure_logging", ignore)
    monkeypatch.setattr(projector_main, "serve", serve)
    projector_main.main()
    assert thawed and thawed[0] > 0


def test_the_review_jobs_process_freezes_its_imports_before_it_ticks(
    monkeypatch: pytest.MonkeyPatch, thawed: list[int]
) -> None:
    async def serve(_settings: Any) -> None:
        thawed.append(gc.get_freeze_count())

    monkeypatch.setattr(worker, "configure_logging", ignore)
    monkeypatch.setattr(jobs_main, "serve", serve)
    jobs_main.main()
    assert thawed and thawed[0] > 0


async def test_scoring_freezes_the_loaded_model_before_it_announces_it(
    monkeypatch: pytest.MonkeyPatch, thawed: list[int]
) -> None:
    model = object()

    async def announce(_broker: Any, _settings: Any, served: Any) -> None:
        thawed.append(gc.get_freeze_count())
        assert served is model

    monkeypatch.setattr(scoring_main, "publish_model_card", announce)
    await scoring_main.load_and_announce(None, ScoringSettings(), ModelSlot(model))  # type: ignore[arg-type]
    assert thawed and thawed[0] > 0
