"""Every collection's pause is observed in loan_engine_gc_pause_seconds, by generation."""

import gc

from services.common.metrics import GC_PAUSE, REGISTRY, _gc_timer, time_collections


def collections(generation: int) -> float:
    value = REGISTRY.get_sample_value(
        "loan_engine_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return value or 0.0


def test_a_full_collection_is_observed_however_often_timing_is_turned_on() -> None:
    time_collections()
    time_collections()
    assert gc.callbacks.count(_gc_timer) == 1
    before = collections(2)
    gc.collect()
    assert collections(2) >= before + 1  # a collection of its own may come on top
    assert REGISTRY.get_sample_value("loan_engine_gc_pause_seconds_sum", {"generation": "2"})


def test_every_generation_is_exported_before_its_first_collection() -> None:
    time_collections()
    exported = {sample.labels["generation"] for sample in GC_PAUSE.collect()[0].samples}
    assert exported == {"0", "1", "2"}
