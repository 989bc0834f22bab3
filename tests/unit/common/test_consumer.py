import errno
import gc

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RecordTooLargeError
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError
from botocore.exceptions import ClientError

from services.common.consumer import (
    GC_THRESHOLDS,
    RetryPolicy,
    TransientError,
    UndecodableMessage,
    is_transient,
    retry_transient,
    settle_heap,
)


def wrapped(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def client_error(status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "op"
    )


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        TimeoutError(),
        TransientError("down"),
        client_error(503),
        wrapped(RuntimeError("driver"), ConnectionResetError("reset")),
        KafkaConnectionError("broker down"),
        OSError(errno.EIO, "I/O error"),
        # What a PostgreSQL restart (`pg_ctl restart -m fast`) does to a connected client.
        AdminShutdownError("terminating connection due to administrator command"),
        CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
def test_dependency_outages_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad data"),
        UndecodableMessage("not json"),
        FileNotFoundError("no such tape"),
        client_error(404),
        wrapped(UndecodableMessage("bad"), ConnectionResetError("reset")),
        # A batch too big for the broker, or a tape id too long to name a file, never gets better.
        MessageSizeTooLargeError("20313605 bytes"),
        RecordTooLargeError("record"),
        OSError(errno.ENAMETOOLONG, "File name too long"),
        wrapped(RuntimeError("publish"), MessageSizeTooLargeError("too big")),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
)
def test_bad_requests_and_bad_data_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_an_error_raised_while_handling_an_outage_is_not_transient_by_association() -> None:
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise KeyError("bug") from None
    except KeyError as error:
        assert not is_transient(error)


def test_back_off_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=3)

    assert [policy.delay(attempt) for attempt in range(1, 6)] == [0.5, 1, 2, 3, 3]


async def test_retry_transient_retries_until_success_and_reports_each_retry() -> None:
    outcomes: list[BaseException | None] = [TransientError("a"), OSError("b"), None]
    retries: list[int] = []

    async def operation() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "done"

    result = await retry_transient(
        operation,
        RetryPolicy(transient_attempts=5, base_seconds=0),
        lambda attempt, _error: retries.append(attempt),
    )

    assert result == "done"
    assert retries == [1, 2]


async def test_retry_transient_gives_up_after_its_attempts_and_never_retries_bad_data() -> None:
    calls: list[str] = []

    async def always(error: BaseException) -> None:
        calls.append(type(error).__name__)
        raise error

    with pytest.raises(TransientError):
        await retry_transient(
            lambda: always(TransientError("down")),
            RetryPolicy(transient_attempts=3, base_seconds=0),
        )
    with pytest.raises(ValueError):
        await retry_transient(lambda: always(ValueError("bad")), RetryPolicy(base_seconds=0))

    assert calls == ["TransientError"] * 3 + ["ValueError"]


def test_settle_heap_freezes_start_up_objects_and_collects_generation_0_rarely() -> None:
    thresholds = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
