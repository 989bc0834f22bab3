"""Bulk-acknowledge benchmark: one `POST /api/exceptions/bulk/acknowledge` over N exceptions.

    .venv/bin/python benchmarks/triage_bulk.py --exceptions 10000 [--projector-max-records 2000]

Against the broker and database named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, under a topic
prefix and a database of its own (removed afterwards): N exceptions are written to the read model
as the projector would, the API runs in process, a projector folds triage.v1 in the background,
and the clock measures the request from its start until its answer, which comes once every one of
the N events is published and folded (the API waits for its own writes). It also reports the time
to read the first page of `GET /api/exceptions?status=acknowledged` afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
from asgi_lifespan import LifespanManager

from contracts.ids import loan_id
from services.cli.stack import databases, topics
from services.gateway.app import create_app
from services.gateway.db import connect, migrate
from services.gateway.projector.consumer import Projector
from services.gateway.runs.domain import run_order
from services.gateway.settings import GatewaySettings

PASSWORD = "benchmark password 1"


async def seed(settings: GatewaySettings, count: int) -> str:
    """`count` soft exceptions of one run, one per loan, as the projector writes them."""
    run_id = uuid4()
    created = datetime.now(UTC)
    conn = await connect(settings)
    try:
        await conn.execute(
            "INSERT INTO gateway.runs (run_id, status, attempt, created_at) "
            "VALUES ($1, 'completed', 1, $2)",
            run_id,
            created,
        )
        rows = [
            (
                run_id,
                seq,
                0,
                loan_id(run_id, "tape.csv", seq + 1),
                None,
                f"L{seq}",
                "tape.csv",
                seq + 1,
                "dti_ratio",
                "credit",
                "soft",
                "DTI above 45%",
                "notebook.dti_exceeds_maximum",
                "projected",
                created,
                run_order(created),
            )
            for seq in range(1, count + 1)
        ]
        await conn.copy_records_to_table(
            "loan_exceptions",
            schema_name="gateway",
            columns=[
                "run_id",
                "seq",
                "ordinal",
                "loan_id",
                "sales_team_id",
                "seller_loan_number",
                "source_file",
                "row",
                "exception_type",
                "category",
                "severity",
                "message",
                "rejection_criteria",
                "disposition",
                "created_at",
                "run_order",
            ],
            records=rows,
        )
    finally:
        await conn.close()
    return str(run_id)


async def measure(count: int, max_records: int) -> dict[str, object]:
    """Seconds for one bulk acknowledge of `count` exceptions, published and folded."""
    server = os.environ.get(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432/postgres"
    )
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    name = f"bench_triage_{uuid4().hex[:8]}"
    prefix = f"bench-triage-{uuid4().hex[:8]}."
    url = await databases.create_database(server, name)
    created = await topics.ensure_topics(kafka, prefix)
    storage = Path(tempfile.mkdtemp(prefix="bench-triage-"))
    settings = GatewaySettings(
        database_url=url,
        kafka_bootstrap_servers=kafka,
        topic_prefix=prefix,
        storage_type="local",
        storage_root=storage,
        environment="test",
        jwt_secret="benchmark-secret-key-with-enough-length-hs256",
        admin_username="root",
        admin_password=PASSWORD,
        triage_wait_seconds=600,
        projector_poll_ms=100,
        projector_max_records=max_records,
        rate_limit_enabled=False,
    )
    try:
        await migrate(settings)
        run_id = await seed(settings, count)
        conn = await connect(settings)
        projector = Projector(settings, conn)
        await projector.start()
        stop = asyncio.Event()
        folding = asyncio.create_task(projector.run(stop))
        try:
            app = create_app(settings)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench", timeout=900
                ) as client:
                    tokens = (
                        await client.post(
                            "/api/auth/login", data={"username": "root", "password": PASSWORD}
                        )
                    ).json()
                    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                    started = time.perf_counter()
                    response = await client.post(
                        "/api/exceptions/bulk/acknowledge",
                        headers=headers,
                        json={"filter": {"run_id": run_id}, "notes": "benchmark"},
                    )
                    bulk_seconds = time.perf_counter() - started
                    body = response.json()
                    started = time.perf_counter()
                    page = await client.get(
                        "/api/exceptions",
                        headers=headers,
                        params={"status": "acknowledged", "limit": 100},
                    )
                    page_seconds = time.perf_counter() - started
        finally:
            stop.set()
            await folding
            await projector.stop()
            await conn.close()
    finally:
        await databases.drop_database(server, name)
        await topics.delete_topics(kafka, created)
    return {
        "exceptions": count,
        "projector_max_records": max_records,
        "status_code": response.status_code,
        "applied": body.get("applied"),
        "pending": body.get("pending"),
        "bulk_seconds": round(bulk_seconds, 2),
        "exceptions_per_second": round(count / bulk_seconds),
        "first_page_seconds": round(page_seconds, 3),
        "page_items": len(page.json()["items"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exceptions", type=int, default=10_000)
    parser.add_argument(
        "--projector-max-records",
        type=int,
        default=200,
        help="GATEWAY_PROJECTOR_MAX_RECORDS: records per projector transaction (default 200).",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.exceptions, args.projector_max_records)), indent=2))


if __name__ == "__main__":
    main()
