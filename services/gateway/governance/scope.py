"""A loan or run in the caller's scope (another team's answers 404 like a missing one), and
keyset cursors of the governance lists."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.errors import BadRequest, NotFound
from services.gateway.identity.principal import Principal
from services.gateway.paging import CursorType, InvalidCursor, decode_cursor
from services.gateway.tables import loan_facts


async def visible_loan(session: AsyncSession, user: Principal, loan_id: UUID) -> Any:
    """The loan's projected facts if the user may see them; 404 otherwise."""
    query = select(loan_facts).where(loan_facts.c.loan_id == loan_id)
    if user.team_scope is not None:
        query = query.where(loan_facts.c.sales_team_id == user.team_scope)
    row = (await session.execute(query.limit(1))).first()
    if row is None:
        raise NotFound("Loan not found")
    return row


def cursor_key(
    kind: str, cursor: str | None, types: tuple[CursorType, ...]
) -> tuple[object, ...] | None:
    """The sort key inside a list's `after` cursor; 400 for a cursor of another list."""
    if cursor is None:
        return None
    try:
        return decode_cursor(kind, cursor, types)
    except InvalidCursor as error:
        raise BadRequest("Invalid cursor") from error
