import io
import json
import logging
from collections.abc import Iterator

import pytest

from services.common.logs import configure_logging, log_context
from services.common.settings import ServiceSettings


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def settings(log_format: str, environment: str = "production") -> ServiceSettings:
    return ServiceSettings(
        service_name="rules", log_format=log_format, environment=environment, log_level="INFO"
    )


@pytest.mark.usefixtures("restore_root_logger")
def test_json_log_line_carries_standard_and_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging(settings("json"), stream)

    with log_context(run_id="0b1c"):
        logging.getLogger("loan_engine.rules").info("batch evaluated", extra={"loans": 500})

    line = json.loads(stream.getvalue().strip())
    assert line["level"] == "INFO"
    assert line["logger"] == "loan_engine.rules"
    assert line["message"] == "batch evaluated"
    assert line["service"] == "rules"
    assert line["run_id"] == "0b1c"
    assert line["loans"] == 500
    assert line["timestamp"].endswith("+00:00")


@pytest.mark.usefixtures("restore_root_logger")
def test_bound_context_ends_with_its_block() -> None:
    stream = io.StringIO()
    configure_logging(settings("json"), stream)

    with log_context(run_id="0b1c"):
        pass
    logging.getLogger("x").warning("after")

    assert "run_id" not in json.loads(stream.getvalue().strip())


@pytest.mark.usefixtures("restore_root_logger")
def test_exceptions_are_logged_as_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging(settings("json"), stream)

    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")

    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert "ValueError: boom" in json.loads(lines[0])["exception"]


@pytest.mark.usefixtures("restore_root_logger")
def test_development_logs_are_text_with_key_value_extras() -> None:
    stream = io.StringIO()
    configure_logging(settings("auto", environment="development"), stream)

    logging.getLogger("loan_engine.rules").info("batch evaluated", extra={"loans": 500})

    line = stream.getvalue().strip()
    assert "batch evaluated" in line
    assert "loans=500" in line
    assert "[rules]" in line
    assert not line.startswith("{")
