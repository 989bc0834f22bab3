"""A read request's queries run in autocommit (no BEGIN, no ROLLBACK round trips); a write
request's in a transaction, as before."""

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Connection

from tests.integration.gateway.conftest import PASSWORD, World

pytestmark = pytest.mark.integration


@pytest.fixture
def transactions(app: FastAPI) -> Iterator[list[bool]]:
    """For each statement the API's engine runs: whether the server ran it in a transaction."""
    seen: list[bool] = []

    def ran(connection: Connection, *_: Any) -> None:
        seen.append(connection.connection.driver_connection.is_in_transaction())

    engine = app.state.engine.sync_engine
    event.listen(engine, "after_cursor_execute", ran)
    yield seen
    event.remove(engine, "after_cursor_execute", ran)


async def test_a_read_request_begins_no_transaction(
    client: httpx.AsyncClient, world: World, transactions: list[bool]
) -> None:
    run_id = world.run_a1.run_id
    for path in (
        f"/api/runs/{run_id}",
        f"/api/loans?run_id={run_id}&limit=5",
        f"/api/summary/{run_id}",
    ):
        response = await client.get(path, headers=world.analyst)
        assert response.status_code == 200, response.text
    assert transactions, "the requests ran queries"
    assert not any(transactions)


async def test_a_read_request_sees_what_a_write_request_just_committed(
    client: httpx.AsyncClient, world: World, transactions: list[bool]
) -> None:
    username = f"reader_{uuid4().hex[:8]}"
    created = await client.post(
        "/api/admin/users",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "role": "analyst",
            "password": PASSWORD,
        },
        headers=world.admin,
    )
    assert created.status_code == 201, created.text
    assert all(transactions), "a write request runs in a transaction"
    read = await client.get(f"/api/admin/users/{created.json()['id']}", headers=world.admin)
    assert read.status_code == 200, read.text
    assert read.json()["username"] == username
