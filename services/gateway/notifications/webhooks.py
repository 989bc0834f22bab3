"""Team webhooks: each notification of a team's run POSTed, HMAC-signed, to the URL an admin set,
retried with back-off (rules in `domain.py`), every try in the delivery log.

A delivery is claimed by moving its next attempt past a lease (`FOR UPDATE SKIP LOCKED`), so two
gateway replicas never POST the same try; a notification raised before its team's webhook was
set is not sent. Deliveries are side effects, not read models: a rebuild never sends again.

A stop (SIGTERM) does not wait for a slow receiver: the POSTs still in flight are abandoned, the
answers already in are recorded, and each abandoned delivery stays pending, due again at once
(its lease given back) with no try counted: the receiver never answered because the process
went away, not because it refused. The next start sends it again (deliveries are at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.notifications.domain import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    delivery_id,
    next_attempt,
    retried,
    signature,
    webhook_body,
)
from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA

logger = logging.getLogger(__name__)
PAGE = 200
MIN_LEASE = timedelta(minutes=2)
ERROR_CHARS = 500
CONCURRENCY = 8  # POSTs in flight at once: a receiver is one team's server, not a CDN


async def enqueue(session: AsyncSession, now: datetime) -> int:
    """A pending delivery for every team notification raised since its webhook was set."""
    rows = list(
        await session.execute(
            text(
                f"SELECT n.notification_id, w.team_id FROM {SCHEMA}.notifications n "
                f"JOIN {SCHEMA}.team_webhooks w ON w.team_id = n.team_id "
                f"LEFT JOIN {SCHEMA}.webhook_deliveries d "
                "ON d.notification_id = n.notification_id AND d.team_id = w.team_id "
                "WHERE d.delivery_id IS NULL AND n.occurred_at >= w.created_at "
                "ORDER BY n.occurred_at LIMIT :limit"
            ),
            {"limit": PAGE},
        )
    )
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.webhook_deliveries (delivery_id, notification_id, team_id, "
                "state, attempts, next_attempt_at, created_at) "
                "VALUES (:id, :notification, :team, 'pending', 0, :now, :now) "
                "ON CONFLICT DO NOTHING"
            ),
            [
                {
                    "id": delivery_id(row.notification_id, row.team_id),
                    "notification": row.notification_id,
                    "team": row.team_id,
                    "now": now,
                }
                for row in rows
            ],
        )
    await session.commit()
    return len(rows)


def lease_of(settings: GatewaySettings, page: int = PAGE) -> timedelta:
    """How long a claimed page stays this process's: twice the longest its tries can take
    (every POST of the page timing out, `CONCURRENCY` at a time), so no other process claims
    and sends a delivery again while it is still being tried."""
    rounds = -(-page // CONCURRENCY)
    longest = timedelta(seconds=2 * rounds * float(settings.webhook_timeout_seconds))
    return max(MIN_LEASE, longest)


async def claim(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int = PAGE
) -> list[Any]:
    """Due deliveries, leased to this process for `lease`, with their notification and webhook."""
    rows = list(
        await session.execute(
            text(
                f"WITH due AS (SELECT delivery_id FROM {SCHEMA}.webhook_deliveries "
                "WHERE state = 'pending' AND next_attempt_at <= :now "
                "ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED), "
                f"leased AS (UPDATE {SCHEMA}.webhook_deliveries d SET next_attempt_at = :lease "
                "FROM due WHERE d.delivery_id = due.delivery_id "
                "RETURNING d.delivery_id, d.notification_id, d.team_id, d.attempts) "
                "SELECT leased.*, w.url, w.secret, n.kind, n.severity, n.title, n.message, "
                "n.subject_id, n.run_id, n.case_id, n.decision_id, n.occurred_at "
                f"FROM leased JOIN {SCHEMA}.team_webhooks w ON w.team_id = leased.team_id "
                f"JOIN {SCHEMA}.notifications n ON n.notification_id = leased.notification_id"
            ),
            {"now": now, "lease": now + lease, "limit": limit},
        )
    )
    await session.commit()
    return rows


def _payload(row: Any) -> dict[str, Any]:
    def text_of(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "notification_id": str(row.notification_id),
        "kind": row.kind,
        "severity": row.severity,
        "title": row.title,
        "message": row.message,
        "team_id": row.team_id,
        "subject_id": str(row.subject_id),
        "run_id": text_of(row.run_id),
        "case_id": text_of(row.case_id),
        "decision_id": text_of(row.decision_id),
        "occurred_at": row.occurred_at.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """How one POST went."""

    status: int | None
    error: str | None
    duration_ms: int


async def post(client: httpx.AsyncClient, row: Any) -> Answer:
    """POST one delivery, signed; never raises."""
    body = webhook_body(row.delivery_id, _payload(row))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(row.secret, body),
        EVENT_HEADER: row.kind,
        DELIVERY_HEADER: str(row.delivery_id),
    }
    started = time.monotonic()
    try:
        response = await client.post(row.url, content=body, headers=headers)
        status, error = response.status_code, None
    except httpx.HTTPError as failure:
        status, error = None, f"{type(failure).__name__}: {failure}"[:ERROR_CHARS]
    return Answer(status, error, int((time.monotonic() - started) * 1000))


async def record(
    session: AsyncSession,
    row: Any,
    answer: Answer,
    now: datetime,
    settings: GatewaySettings,
) -> str:
    """Log the try and move the delivery on: delivered, retried later, or failed."""
    attempts = row.attempts + 1
    ok = answer.status is not None and 200 <= answer.status < 300
    if ok:
        state = "delivered"
    elif retried(answer.status) and attempts < settings.webhook_max_attempts:
        state = "pending"
    else:
        state = "failed"
    error = answer.error or (None if ok else f"HTTP {answer.status}")
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.webhook_attempts (delivery_id, attempt, attempted_at, "
            "status_code, error, duration_ms) VALUES (:id, :attempt, :at, :status, :error, :ms) "
            "ON CONFLICT DO NOTHING"
        ),
        {
            "id": row.delivery_id,
            "attempt": attempts,
            "at": now,
            "status": answer.status,
            "error": error,
            "ms": answer.duration_ms,
        },
    )
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.webhook_deliveries SET state = :state, attempts = :attempts, "
            "next_attempt_at = :next, last_status = :status, last_error = :error, "
            "delivered_at = :delivered WHERE delivery_id = :id"
        ),
        {
            "id": row.delivery_id,
            "state": state,
            "attempts": attempts,
            "next": next_attempt(now, attempts, settings.webhook_backoff_seconds),
            "status": answer.status,
            "error": error,
            "delivered": now if ok else None,
        },
    )
    await session.commit()
    if state == "failed":
        logger.warning(
            "webhook delivery failed",
            extra={"delivery_id": str(row.delivery_id), "status": answer.status},
        )
    return state


async def release(
    session: AsyncSession, rows: list[Any], due: datetime, leased_until: datetime
) -> None:
    """Give back the lease of deliveries claimed but not tried to the end: pending, due at
    `due`, their tries uncounted (unless another process has claimed them since)."""
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.webhook_deliveries SET next_attempt_at = :due "
            "WHERE delivery_id = ANY(:ids) AND state = 'pending' AND next_attempt_at = :leased"
        ),
        {"ids": [row.delivery_id for row in rows], "due": due, "leased": leased_until},
    )
    await session.commit()


async def _until_answered_or_stopped(
    posts: list[asyncio.Task[Answer]], stop: asyncio.Event | None
) -> None:
    """Wait for every POST, or until `stop` is set: then cancel those still in flight."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_task(stop.wait()) if stop is not None else loop.create_future()
    waiting: set[asyncio.Future[Any]] = set(posts)
    try:
        while waiting and not stopped.done():
            _, waiting = await asyncio.wait(
                waiting | {stopped}, return_when=asyncio.FIRST_COMPLETED
            )
            waiting.discard(stopped)
    finally:
        stopped.cancel()
        for task in waiting:
            task.cancel()
        if waiting:
            await asyncio.wait(waiting)


async def deliver(
    session: AsyncSession,
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    now: datetime,
    stop: asyncio.Event | None = None,
) -> dict[str, int]:
    """Enqueue new deliveries, then try every due one once; counts by resulting state.

    Once `stop` is set, the POSTs in flight are abandoned (counted as `abandoned`) and their
    deliveries released, due again at `now`; the answers already in are recorded.
    """
    await enqueue(session, now)
    if stop is not None and stop.is_set():
        return {}
    lease = lease_of(settings)
    rows = await claim(session, now, lease)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def bounded(row: Any) -> Answer:
        async with gate:
            return await post(client, row)

    posts = [asyncio.create_task(bounded(row)) for row in rows]
    await _until_answered_or_stopped(posts, stop)
    counts: dict[str, int] = {}
    abandoned = [row for row, task in zip(rows, posts, strict=True) if task.cancelled()]
    try:
        # The answers first: a 2xx recorded is a POST never sent again.
        for row, task in zip(rows, posts, strict=True):
            if not task.cancelled():
                state = await record(session, row, task.result(), now, settings)
                counts[state] = counts.get(state, 0) + 1
    finally:
        if abandoned:
            await release(session, abandoned, now, now + lease)
            counts["abandoned"] = len(abandoned)
            logger.info(
                "webhook deliveries abandoned at stop, pending again",
                extra={"abandoned": len(abandoned)},
            )
    return counts


async def delivery_log(
    session: AsyncSession, team_id: str, skip: int, limit: int
) -> list[tuple[Any, list[Any]]]:
    """A team's deliveries, newest first, each with its tries."""
    deliveries = list(
        await session.execute(
            text(
                f"SELECT d.*, n.kind, n.title FROM {SCHEMA}.webhook_deliveries d "
                f"JOIN {SCHEMA}.notifications n ON n.notification_id = d.notification_id "
                "WHERE d.team_id = :team ORDER BY d.created_at DESC, d.delivery_id "
                "OFFSET :skip LIMIT :limit"
            ),
            {"team": team_id, "skip": skip, "limit": limit},
        )
    )
    ids: list[UUID] = [row.delivery_id for row in deliveries]
    tries: dict[UUID, list[Any]] = {}
    if ids:
        for attempt in await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.webhook_attempts WHERE delivery_id = ANY(:ids) "
                "ORDER BY delivery_id, attempt"
            ),
            {"ids": ids},
        ):
            tries.setdefault(attempt.delivery_id, []).append(attempt)
    return [(row, tries.get(row.delivery_id, [])) for row in deliveries]
