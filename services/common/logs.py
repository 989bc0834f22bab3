"""Structured logging (SPEC §5): JSON lines in production, coloured text in development.

Every line carries timestamp, level, logger, message and service, the trace id when a span is
active, fields bound with `log_context(run_id=...)`, and any key-value `extra=` of the call.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import orjson

from services.common.settings import ServiceSettings
from services.common.tracing import current_trace_id

# Attributes every LogRecord has (and uvicorn's coloured copy of its message); anything else
# on a record came from `extra=`.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "loan_engine_log_context", default=_EMPTY
)
_COLOURS = {
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_RESET = "\x1b[0m"


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (run_id, request_id, ...) to every log line written inside the block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def record_fields(record: logging.LogRecord, service: str) -> dict[str, Any]:
    """The structured fields of one log record, in a stable order."""
    fields: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "service": service,
    }
    if trace_id := current_trace_id():
        fields["trace_id"] = trace_id
    fields.update(_context.get())
    fields.update((key, value) for key, value in vars(record).items() if key not in _RECORD_FIELDS)
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(record_fields(record, self.service), default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, coloured by level when `colour` is set."""

    def __init__(self, service: str, *, colour: bool) -> None:
        super().__init__()
        self.service = service
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self.service)
        head = [fields.pop(name) for name in ("timestamp", "level", "logger", "message")]
        fields.pop("service")
        exception = fields.pop("exception", None)
        level = f"{head[1]:<8}"
        if self.colour:
            level = f"{_COLOURS.get(head[1], '')}{level}{_RESET}"
        extras = " ".join(f"{key}={value}" for key, value in fields.items())
        line = f"{head[0]} {level} [{self.service}] {head[2]}: {head[3]} {extras}".rstrip()
        return f"{line}\n{exception}" if exception else line


def use_json(settings: ServiceSettings) -> bool:
    """Whether this process writes JSON lines (`auto`: everywhere but development)."""
    if settings.log_format == "auto":
        return settings.environment != "development"
    return settings.log_format == "json"


def configure_logging(settings: ServiceSettings, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn, faststream, aiokafka included) through one formatter."""
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    if use_json(settings):
        handler.setFormatter(JsonFormatter(settings.service_name))
    else:
        colour = bool(getattr(target, "isatty", lambda: False)())
        handler.setFormatter(TextFormatter(settings.service_name, colour=colour))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    adopt_library_loggers("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "aiokafka")
    # aiokafka logs every rebalance and metadata refresh at INFO; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def adopt_library_loggers(*names: str) -> None:
    """Send these libraries' records through the root handler instead of handlers of their own.

    Some libraries install a handler when imported (MLflow does on `sqlalchemy.engine` and
    `alembic`, with `propagate = False`), which would take their lines out of the JSON log.
    """
    for name in names:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
