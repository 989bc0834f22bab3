"""A run's data-quality means: the one implementation lives in `contracts.quality`."""

from contracts.quality import (
    VALIDITY_SCALE,
    QualitySums,
    RunQualityMeans,
    run_quality,
    validity_420,
)

__all__ = ["VALIDITY_SCALE", "QualitySums", "RunQualityMeans", "run_quality", "validity_420"]
