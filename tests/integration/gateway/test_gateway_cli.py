"""`loan-engine admin ...` and `loan-engine projections ...` on the real database and broker."""

import asyncio
import json

import pytest
from aiokafka import AIOKafkaConsumer
from conftest import gateway_settings, publish_runs
from typer.testing import CliRunner

from contracts.codec import loads
from contracts.topics import AUDIT
from services.cli.main import app
from services.gateway.db import migrate
from services.gateway.settings import GatewaySettings
from tests.conftest import run_async
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    """The settings the CLI will read from its environment."""
    return gateway_settings(
        fresh_database_url, kafka_bootstrap_servers, topic_prefix, tmp_path_factory.mktemp("cli")
    )


@pytest.fixture(scope="module")
async def cli_env(cli_settings: GatewaySettings) -> dict[str, str]:
    """The environment of a CLI call, on a migrated database of this module's own."""
    await migrate(cli_settings)
    return {
        "DATABASE_URL": cli_settings.database_dsn,
        "KAFKA_BOOTSTRAP_SERVERS": cli_settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": cli_settings.topic_prefix,
    }


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, dict]:
    result = runner.invoke(app, list(args), env=env, input=stdin)
    lines = result.stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return result.exit_code, payload


def test_an_operator_creates_a_team_and_users_with_passwords_from_stdin(cli_env: dict) -> None:
    code, team = invoke(cli_env, "admin", "create-team", "North Desk", "--json")
    assert (code, team) == (0, {"id": "north-desk", "name": "North Desk"})
    code, user = invoke(
        cli_env,
        "admin",
        "create-user",
        "nina",
        "--email",
        "nina@example.com",
        "--role",
        "sales_team",
        "--team",
        "north-desk",
        "--password-stdin",
        "--json",
        stdin="a-long-password\n",
    )
    assert code == 0
    assert (user["username"], user["role"], user["team_id"]) == ("nina", "sales_team", "north-desk")
    code, listed = invoke(cli_env, "admin", "list-users", "--json")
    assert "nina" in [u["username"] for u in listed["users"]]
    assert all("password" not in key for u in listed["users"] for key in u)


def test_a_password_is_never_taken_from_an_argument(cli_env: dict) -> None:
    code, _ = invoke(
        cli_env, "admin", "create-user", "pat", "--email", "p@example.com", "--role", "analyst"
    )
    assert code == 2
    code, _ = invoke(
        cli_env,
        "admin",
        "create-user",
        "pat",
        "--email",
        "p@example.com",
        "--role",
        "analyst",
        "--password",
        "x",
    )
    assert code == 2


def test_a_duplicate_user_and_an_unknown_user_end_with_exit_code_one(cli_env: dict) -> None:
    args = ("admin", "create-user", "quinn", "--email", "q@example.com", "--role", "analyst")
    assert invoke(cli_env, *args, "--password-stdin", stdin="first-password\n")[0] == 0
    assert invoke(cli_env, *args, "--password-stdin", stdin="other-password\n")[0] == 1
    code, _ = invoke(
        cli_env, "admin", "reset-password", "nobody", "--password-stdin", stdin="whatever-pw\n"
    )
    assert code == 1


def test_reset_password_and_db_status_report_as_json(cli_env: dict) -> None:
    invoke(
        cli_env,
        "admin",
        "create-user",
        "rita",
        "--email",
        "r@example.com",
        "--role",
        "analyst",
        "--password-stdin",
        stdin="first-password\n",
    )
    code, reset = invoke(
        cli_env,
        "admin",
        "reset-password",
        "rita",
        "--password-stdin",
        "--json",
        stdin="new-password\n",
    )
    assert (code, reset) == (0, {"username": "rita", "password_reset": True})
    code, status = invoke(cli_env, "admin", "db-status", "--json")
    assert code == 0
    assert status["reachable"] and status["up_to_date"]
    assert status["revision"] == status["head"]


def test_db_status_of_an_unreachable_database_ends_with_exit_code_one(cli_env: dict) -> None:
    env = {**cli_env, "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    code, status = invoke(env, "admin", "db-status", "--json")
    assert (code, status["reachable"]) == (1, False)


def test_two_rebuilds_agree_on_the_checksum(cli_env: dict, cli_settings: GatewaySettings) -> None:
    run_async(lambda: publish_runs(cli_settings, [RunScenario(loans=6)]))
    code, first = invoke(cli_env, "projections", "rebuild", "--json")
    assert code == 0
    assert first["replayed_by"] == "rebuild"
    _, one = invoke(cli_env, "projections", "checksum", "--json")
    invoke(cli_env, "projections", "rebuild", "--json")
    _, two = invoke(cli_env, "projections", "checksum", "--json")
    assert one["checksum"] == two["checksum"]
    assert one["tables"]["runs"]["rows"] == two["tables"]["runs"]["rows"] > 0


async def _audit_events(settings: GatewaySettings, action: str, role: str) -> list[dict]:
    """The audit.v1 events of `action` on a user of `role`, read from the start of the topic."""
    consumer = AIOKafkaConsumer(
        settings.topic(AUDIT),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not found and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                events = (loads(r.value) for r in records)
                found.extend(
                    e for e in events if e["action"] == action and e["target"].get("role") == role
                )
    finally:
        await consumer.stop()
    return found


def test_an_operator_creates_a_senior_analyst_and_the_write_is_audited(
    cli_env: dict, cli_settings: GatewaySettings
) -> None:
    code, user = invoke(
        cli_env,
        "admin",
        "create-user",
        "sam@example.com",
        "--email",
        "sam@example.com",
        "--role",
        "senior_analyst",
        "--password-stdin",
        "--json",
        stdin="a-long-password\n",
    )
    assert code == 0
    assert user["role"] == "senior_analyst"
    mine = run_async(lambda: _audit_events(cli_settings, "admin.create_user", "senior_analyst"))
    assert len(mine) == 1
    assert mine[0]["source"] == "cli"
    assert mine[0]["outcome"] == "success"
    assert mine[0]["target"]["username"] == "s***@***"
    assert "a-long-password" not in json.dumps(mine)
