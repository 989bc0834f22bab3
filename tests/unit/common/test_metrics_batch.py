from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, Histogram

from services.common.metrics import observe_batch

BUCKETS = (25, 50, 75, 90, 95, 99, 100)
SCORES = [Decimal(text) for text in ("95.45", "72.73", "95.45", "100.00", "0.00", "25", "99.99")]


def histogram_samples(observe: str, amounts: list[Decimal]) -> dict[str, float]:
    registry = CollectorRegistry()
    histogram = Histogram("score", "A score.", buckets=BUCKETS, registry=registry)
    if observe == "batch":
        observe_batch(histogram, amounts)
    else:
        for amount in amounts:
            histogram.observe(float(amount))
    (metric,) = registry.collect()
    return {
        f"{sample.name}{sample.labels.get('le', '')}": sample.value for sample in metric.samples
    }


def test_a_batch_observation_counts_every_bucket_as_observing_one_by_one() -> None:
    batched = histogram_samples("batch", SCORES * 3)
    one_by_one = histogram_samples("single", SCORES * 3)
    assert {k: v for k, v in batched.items() if k != "score_sum"} == {
        k: v for k, v in one_by_one.items() if k != "score_sum"
    }
    assert batched["score_count"] == len(SCORES) * 3
    assert batched["score_bucket25.0"] == 6


def test_a_batch_observation_adds_the_exact_total_to_the_sum() -> None:
    batched = histogram_samples("batch", SCORES * 3)
    assert batched["score_sum"] == float(sum(SCORES) * 3)
    assert batched["score_sum"] == pytest.approx(
        histogram_samples("single", SCORES * 3)["score_sum"]
    )


def test_an_empty_batch_observes_nothing() -> None:
    samples = histogram_samples("batch", [])
    assert samples["score_count"] == 0
    assert samples["score_sum"] == 0
