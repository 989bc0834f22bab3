import errno
import gc

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RecordTooLargeError
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError
from botocore.exceptions import ClientError
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError

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


def as_sqlalchemy_raises(error: asyncpg.PostgresError, chained: bool) -> BaseException:
    """`error` as SQLAlchemy's asyncpg dialect raises it: translated to the dialect's DBAPI error
    (`raise ... from error`), wrapped in a `DBAPIError` whose `.orig` is that; `chained` also
    sets the wrapper's `__cause__` as the engine's `raise ... from` does."""
    dbapi_error = AsyncAdapt_asyncpg_dbapi.Error(error.args[0], error)
    dbapi_error.__cause__ = error
    wrapper = DBAPIError.instance(
        "UPDATE t SET v = 1", {}, dbapi_error, AsyncAdapt_asyncpg_dbapi.Error
    )
    if chained:
        wrapper.__cause__ = dbapi_error
    return wrapper


TRANSACTION_CONFLICTS = [
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.LockNotAvailableError("could not obtain lock on row"),
]


@pytest.mark.parametrize("chained", [True, False])
@pytest.mark.parametrize("error", TRANSACTION_CONFLICTS, ids=lambda error: type(error).__name__)
def test_a_deadlock_or_serialization_failure_is_transient_raw_or_wrapped_by_sqlalchemy(
    error: asyncpg.PostgresError, chained: bool
) -> None:
    assert is_transient(error)
    wrapper = as_sqlalchemy_raises(error, chained)
    assert type(wrapper) is DBAPIError  # not an OperationalError: only its SQLSTATE says so
    assert getattr(wrapper.orig, "sqlstate", None) == error.sqlstate  # type: ignore[attr-defined]
    assert is_transient(wrapper)
    assert is_transient(wrapped(RuntimeError("handler"), wrapper))


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.CheckViolationError("violates check constraint"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type uuid"),
        # Deferred constraints checked at commit: the same data fails again.
        asyncpg.exceptions.TransactionIntegrityConstraintViolationError("constraint violated"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_database_error_about_the_data_is_not_transient_raw_or_wrapped(
    error: asyncpg.PostgresError,
) -> None:
    assert not is_transient(error)
    assert not is_transient(as_sqlalchemy_raises(error, chained=True))


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
