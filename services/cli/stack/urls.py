"""Pure helpers for database URLs: driver forms, database names and password redaction."""

from urllib.parse import quote, urlsplit, urlunsplit

REDACTED = "***"


def redact(url: str) -> str:
    """The URL with any password replaced by `***` (safe to print and log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}{port}"))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def database_name(url: str) -> str:
    """The database a URL points at (empty when none is named)."""
    return urlsplit(url).path.lstrip("/")


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg from a SQLAlchemy URL (`postgresql+asyncpg://` → `postgresql://`)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of a PostgreSQL URL."""
    parts = urlsplit(asyncpg_dsn(url))
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def local_url(port: int, database: str, user: str = "postgres", host: str = "127.0.0.1") -> str:
    """The SQLAlchemy URL of a trust-auth cluster on this machine."""
    return f"postgresql+asyncpg://{user}@{host}:{port}/{database}"
