"""What the review job that opens cases costs PostgreSQL per tick, the old way and the new.

    .venv/bin/python benchmarks/review_opening.py --loans 500000 --unopened 10000

Builds in a scratch database of its own (on the server of DATABASE_URL, dropped afterwards) what
a scored backlog leaves in the gateway's read models, with SQL alone: `--loans` scored loans in
runs of `--run` loans and batches of 500 (rows as wide as real ones: factors, features), 37 %
routed to `human_review`, their `scored_batches`, and a case for every `human_review` loan.
Then times ticks of the job in two states: every case opened, and the cases of the newest
`--unopened` loans missing (a projector lagging behind the openings):

- before: the former query, an anti-join of every `human_review` loan with the cases in
  (scored_at, run_id, seq) order, 1,000 loans a page, paged until a short page;
- after: `open_cases` as a gateway runs it, with its memory of batches seen with every case and
  its hold on what it published: its first tick (a restarted gateway: every batch read), the
  next (batches seen with every case skipped, those whose openings were just published held),
  and one once the hold is over (the batches lacking cases read again). Openings are counted
  (the last column), not published.

Prints each tick's wall seconds, its PostgreSQL backend's CPU seconds (from /proc, when the
server runs on this machine; parallel workers of the former query are not counted, the wall
time shows them) and this process's (the new tick builds the openings it would publish, the
former query alone does not). On a shared, loaded machine the numbers are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.cli.stack import databases
from services.gateway.db import connect, migrate
from services.gateway.review.jobs import OpenedBatches, RecentlyPublished, open_cases
from services.gateway.settings import GatewaySettings

BATCH = 500
OLD_PAGE = 1000
FACTOR = {
    "value": "766",
    "feature": "credit_score",
    "description": "Credit score of 766 lowers the estimated default risk of this loan",
    "contribution": "-1.358020",
}
OLD_QUERY = (
    "SELECT s.loan_id, s.run_id, s.seq, s.seller_loan_number, s.model_version, s.score, "
    "s.routing_reason, s.features ->> 'loan_amount' AS loan_amount, s.scored_at "
    "FROM gateway.loan_scores s LEFT OUTER JOIN gateway.review_cases c ON c.loan_id = s.loan_id "
    "WHERE s.routing_decision = 'human_review' AND c.case_id IS NULL {after}"
    "ORDER BY s.scored_at, s.run_id, s.seq LIMIT {page}"
)


class Counting:
    """A publisher that counts what it is given."""

    def __init__(self) -> None:
        self.events = 0

    async def publish(self, *_args: Any, **_kwargs: Any) -> None:
        self.events += 1


def cpu_of(pid: int) -> float | None:
    """CPU seconds of a local process from /proc (None when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def build(settings: GatewaySettings, loans: int, run: int) -> None:
    """The scored loans, their batches and a case for every `human_review` loan."""
    conn = await connect(settings)
    factors = orjson.dumps([FACTOR] * 5).decode()
    try:
        for first in range(0, loans, run):
            size = min(run, loans - first)
            await conn.execute(
                "INSERT INTO gateway.loan_scores SELECT $1, g, gen_random_uuid(), (g - 1) / $3, "
                "'L' || g, 'priced', '7', 300 + g * 7 % 550, '0.120000', 'moderate', "
                "CASE WHEN g * 37 % 100 < 37 THEN 'human_review' WHEN g % 2 = 0 "
                "THEN 'auto_approve' ELSE 'auto_decline' END, 'score_in_review_band', "
                "'{}', 'routing-v1', $4::jsonb, $4::jsonb, jsonb_build_object("
                "'loan_amount', (100000 + g % 700000)::text, 'credit_score', '766', "
                "'dti_ratio', '19.7', 'ltv_ratio', '93.14', 'note_rate', '3.547', "
                "'loan_purpose', 'rate_term_refinance', 'property_type', 'condo', "
                "'occupancy_status', 'investment', 'appraisal_to_price', '1.0550'), "
                "now() - make_interval(secs => $2 - $5 - g) FROM generate_series(1, $2) g",
                uuid4(),
                size,
                BATCH,
                factors,
                first,
            )
        await conn.execute(
            "INSERT INTO gateway.scored_batches SELECT run_id, batch_seq, count(*), "
            "count(*) FILTER (WHERE routing_decision <> 'human_review'), min(seq), max(seq) "
            "FROM gateway.loan_scores GROUP BY run_id, batch_seq"
        )
        await conn.execute(
            "INSERT INTO gateway.review_cases (case_id, loan_id, run_id, seq, "
            "seller_loan_number, model_version, score, routing_reason, loan_amount, scored_at, "
            "opened_priority_score, opened_priority, opened_at, sla_deadline, status, releases, "
            "actions, conditions, fulfilled) SELECT gen_random_uuid(), loan_id, run_id, seq, "
            "seller_loan_number, model_version, score, routing_reason, "
            "features ->> 'loan_amount', scored_at, 50, 'medium', now(), now() + interval "
            "'1 day', 'pending', 0, 1, 0, '{}' FROM gateway.loan_scores "
            "WHERE routing_decision = 'human_review'"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def timed(
    sessionmaker: async_sessionmaker[AsyncSession],
    tick: Callable[[AsyncSession], Awaitable[int]],
) -> tuple[float, float | None, float, int]:
    """(wall seconds, backend CPU seconds, this process's CPU seconds, loans found) of a tick."""
    async with sessionmaker() as session:
        pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await session.commit()
        cpu_before, wall_before = cpu_of(pid), time.perf_counter()
        own_before = time.process_time()
        found = await tick(session)
        wall = time.perf_counter() - wall_before
        own = time.process_time() - own_before
        cpu_after = cpu_of(pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return wall, cpu, own, found


async def old_tick(session: AsyncSession) -> int:
    """The former job's reads: every page of unopened `human_review` loans."""
    found, after = 0, None
    while True:
        where = "" if after is None else "AND (s.scored_at, s.run_id, s.seq) > (:at, :run, :seq) "
        query = text(OLD_QUERY.format(after=where, page=OLD_PAGE))
        params = {} if after is None else {"at": after[0], "run": after[1], "seq": after[2]}
        rows = list(await session.execute(query, params))
        await session.commit()
        found += len(rows)
        if len(rows) < OLD_PAGE:
            return found
        after = (rows[-1].scored_at, rows[-1].run_id, rows[-1].seq)


def report(label: str, took: tuple[float, float | None, float, int]) -> None:
    wall, cpu, own, found = took
    backend = "" if cpu is None else f", {cpu:.2f} s CPU in its PostgreSQL backend"
    print(f"  {label:<40} {wall:6.3f} s wall{backend}, {own:.2f} s here; {found} to open")


async def measure(
    sessionmaker: async_sessionmaker[AsyncSession], settings: GatewaySettings, state: str
) -> None:
    print(f"{state}:")
    report("before (every page of the anti-join)", await timed(sessionmaker, old_tick))
    opened, publisher = OpenedBatches(), Counting()
    recent = RecentlyPublished(hold=settings.review_republish_seconds)
    now = datetime.now(UTC)

    async def new_tick(session: AsyncSession) -> int:
        return await open_cases(session, publisher, settings, now, recent=recent, opened=opened)

    report("after, first tick (a restarted gateway)", await timed(sessionmaker, new_tick))
    report("after, next tick", await timed(sessionmaker, new_tick))
    recent = RecentlyPublished(hold=0)  # as if the hold were over
    report("after, a tick once the hold is over", await timed(sessionmaker, new_tick))


async def main(loans: int, run: int, unopened: int) -> None:
    server_url = os.environ.get(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432/postgres"
    )
    name = f"bench_opening_{uuid.uuid4().hex[:8]}"
    url = await databases.create_database(server_url, name)
    try:
        settings = GatewaySettings(database_url=url)
        await migrate(settings)
        started = time.perf_counter()
        await build(settings, loans, run)
        print(f"built {loans} scored loans in {time.perf_counter() - started:.0f} s")
        engine = create_async_engine(settings.database_dsn, pool_size=1, max_overflow=0)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            await measure(sessionmaker, settings, "every case opened")
            conn = await connect(settings)
            try:
                await conn.execute(
                    "DELETE FROM gateway.review_cases WHERE case_id IN (SELECT case_id FROM "
                    "gateway.review_cases ORDER BY scored_at DESC LIMIT $1)",
                    unopened,
                )
                await conn.execute("VACUUM ANALYZE gateway.review_cases")
            finally:
                await conn.close()
            await measure(sessionmaker, settings, f"the newest {unopened} cases not folded yet")
        finally:
            await engine.dispose()
    finally:
        await databases.drop_database(server_url, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--loans", type=int, default=500_000)
    parser.add_argument("--run", type=int, default=250_000, help="loans a run")
    parser.add_argument("--unopened", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.loans, arguments.run, arguments.unopened))
