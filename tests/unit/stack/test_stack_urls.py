"""Database URL helpers: redaction, driver forms and database names."""

import pytest

from services.cli.stack.urls import (
    asyncpg_dsn,
    database_name,
    local_url,
    redact,
    sqlalchemy_url,
    with_database,
)


def test_redaction_hides_the_password_and_keeps_the_rest() -> None:
    url = "postgresql+asyncpg://app:s3cr%40t@db.internal:5432/loan_engine?ssl=require"
    assert redact(url) == "postgresql+asyncpg://app:***@db.internal:5432/loan_engine?ssl=require"


def test_redaction_leaves_a_url_without_password_alone() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:55432/loan_engine"
    assert redact(url) == url


def test_redaction_keeps_ipv6_hosts_bracketed() -> None:
    assert redact("postgresql://u:p@[::1]:5432/db") == "postgresql://u:***@[::1]:5432/db"


def test_asyncpg_dsn_drops_the_sqlalchemy_driver() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u@h:1/d") == "postgresql://u@h:1/d"


def test_sqlalchemy_url_adds_the_asyncpg_driver() -> None:
    assert sqlalchemy_url("postgres://u@h:1/d") == "postgresql+asyncpg://u@h:1/d"


def test_non_postgres_urls_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/d"):
        asyncpg_dsn("mysql://u:pw@h/d")


def test_with_database_points_the_same_server_at_another_database() -> None:
    url = with_database("postgresql+asyncpg://u:p@h:5432/postgres?x=1", "test_abc")
    assert url == "postgresql+asyncpg://u:p@h:5432/test_abc?x=1"
    assert database_name(url) == "test_abc"


def test_local_url_is_a_trust_auth_loopback_url() -> None:
    assert local_url(55432, "loan_engine") == (
        "postgresql+asyncpg://postgres@127.0.0.1:55432/loan_engine"
    )
