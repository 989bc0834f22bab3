"""Scoring's errors: a missing model stops the service; a bad routing policy stops it too."""

from services.scoring.domain import PolicyError


class ScoringError(Exception):
    """Base of the scoring service's own errors."""


class NoProductionModel(ScoringError):
    """The registry has no production model and the service may not train one."""


class UnknownModelVersion(ScoringError):
    """A model version the registry does not hold."""


__all__ = ["NoProductionModel", "PolicyError", "ScoringError", "UnknownModelVersion"]
