"""`loan-engine admin ...`: users, teams and the gateway database, for operators (SPEC §6).

Passwords are read from standard input only (`--password-stdin`), never from an argument.
With `--json` a command ends with exactly one JSON object on standard output. The database is
the running stack's unless DATABASE_URL says otherwise (`services.cli.reach`); the gateway's
modules are imported by the commands that use them, so `loan-engine --help` stays quick.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from services.cli import reach
from services.cli.options import JsonOption
from services.gateway.identity.principal import ROLES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.gateway.identity import repository as repo
    from services.gateway.settings import GatewaySettings

app = typer.Typer(help="Operators' chores: users, teams, the gateway database.")
T = TypeVar("T")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def gateway_settings() -> GatewaySettings:
    """The gateway's settings as the running stack has them (the environment wins)."""
    from services.gateway.settings import GatewaySettings

    return GatewaySettings(_env_file=reach.env_files())  # type: ignore[call-arg]


def _with_session(settings: GatewaySettings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from services.gateway.db import make_engine

    async def main() -> T:
        engine = make_engine(settings)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        typer.secho("error: pass --password-stdin and the password on standard input", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        typer.secho("error: no password on standard input", err=True)
        raise typer.Exit(2)
    return password


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(payload, default=str) if as_json else text)


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a session on the stack's database; every failure is one line, exit 1."""
    from services.gateway.errors import GatewayError

    settings = gateway_settings()
    try:
        return _with_session(settings, work)
    except GatewayError as error:
        reach.fail(error.message)
    except Exception as error:
        if reach.is_database_error(error):
            reach.database_unreachable(settings.database_dsn, error)
        raise


def _user_json(user: repo.User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "team_id": user.team_id,
        "is_active": user.is_active,
    }


@app.command("create-user")
def create_user(
    username: str,
    email: Annotated[str, typer.Option("--email", help="The user's e-mail.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    password_stdin: PasswordStdin = False,
    team: Annotated[str | None, typer.Option("--team", help="Team id (sales_team).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user; the password comes from standard input."""
    if role not in ROLES:
        typer.secho(f"error: --role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    password = _password(password_stdin)
    from services.gateway.identity import service

    user = _run(
        lambda session: service.create_user(
            session, username=username, email=email, role=role, password=password, team_id=team
        )
    )
    _emit(as_json, _user_json(user), f"created {user.role} {user.username}")


@app.command("create-team")
def create_team(
    name: str,
    team_id: Annotated[str | None, typer.Option("--id", help="Id (default: slug of name).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a sales team."""
    from services.gateway.identity import service

    team = _run(lambda session: service.create_team(session, name, team_id))
    _emit(as_json, {"id": team.id, "name": team.name}, f"created team {team.id} ({team.name})")


@app.command("list-users")
def list_users(as_json: JsonOption = False) -> None:
    """Every user."""
    from services.gateway.identity import repository as repo

    users = _run(lambda session: repo.list_users(session, 0, 100_000))
    lines = [f"{u.username:<24} {u.role:<11} {u.team_id or '-':<16} {u.email}" for u in users]
    _emit(as_json, {"users": [_user_json(u) for u in users]}, "\n".join(lines) or "no users")


@app.command("reset-password")
def reset_password(
    username: str, password_stdin: PasswordStdin = False, as_json: JsonOption = False
) -> None:
    """Set a user's password from standard input."""
    password = _password(password_stdin)
    from services.gateway.identity import service

    _run(lambda session: service.reset_password(session, username, password))
    _emit(as_json, {"username": username, "password_reset": True}, f"password reset: {username}")


async def _db_status(session: AsyncSession) -> dict[str, Any]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from services.gateway.db import alembic_config
    from services.gateway.identity import repository as repo

    def current(connection: Any) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table_schema": "gateway"})
        return context.get_current_revision()

    connection = await session.connection()
    revision = await connection.run_sync(current)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    users = await repo.count_users(session) if revision else 0
    return {
        "reachable": True,
        "revision": revision,
        "head": head,
        "up_to_date": revision == head,
        "users": users,
    }


@app.command("db-status")
def db_status(as_json: JsonOption = False) -> None:
    """Whether the gateway database answers and is migrated to the newest revision."""
    settings = gateway_settings()
    try:
        status = _with_session(settings, _db_status)
    except Exception as error:
        if not reach.is_database_error(error):
            raise
        if not as_json:
            reach.database_unreachable(settings.database_dsn, error)
        status = {"reachable": False, "error": reach.reason(error)}
    text = f"database reachable, revision {status.get('revision')} (head {status.get('head')})"
    _emit(as_json, status, text)
    if not status["reachable"] or not status.get("up_to_date"):
        raise typer.Exit(1)
