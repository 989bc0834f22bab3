"""Reporting's error tree: permanent ones are dead-lettered, transient ones retried."""

from contracts.runs import Phase
from services.common.consumer import PermanentMessageError, TransientError


class ReportingError(Exception):
    """Base of reporting's own errors."""


class InconsistentRun(ReportingError, PermanentMessageError):
    """A run's stored loans disagree with its counts: never fixed by retrying."""


class OutputUnavailable(ReportingError, TransientError):
    """Writing or archiving a run's outputs failed after every retry."""

    def __init__(self, phase: Phase, cause: BaseException) -> None:
        super().__init__(f"{phase} failed: {type(cause).__name__}: {cause}")
        self.phase = phase
