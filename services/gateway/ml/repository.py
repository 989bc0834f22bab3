"""The read models `/ml` answers from: model cards (models.v1) and the scored loans' model inputs
(loans.scored.v1), both projected by the gateway's projector."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import loan_scores, model_cards


async def latest_card(session: AsyncSession) -> Any | None:
    """The card of the model loaded last (the production model the scoring service serves)."""
    query = select(model_cards).order_by(model_cards.c.loaded_at.desc()).limit(1)
    return (await session.execute(query)).first()


async def card(session: AsyncSession, model_version: str) -> Any | None:
    """The card of one model version, loaded last when several names share it."""
    query = (
        select(model_cards)
        .where(model_cards.c.model_version == model_version)
        .order_by(model_cards.c.loaded_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).first()


async def run_model_version(session: AsyncSession, run_id: UUID) -> str | None:
    """The model version that scored most of the run's loans; None when none is scored."""
    query = (
        select(loan_scores.c.model_version)
        .where(loan_scores.c.run_id == run_id)
        .group_by(loan_scores.c.model_version)
        .order_by(func.count().desc(), loan_scores.c.model_version)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def run_features(session: AsyncSession, run_id: UUID, model_version: str) -> list[Any]:
    """The model inputs of the run's loans that version scored (JSON objects)."""
    query = select(loan_scores.c.features).where(
        loan_scores.c.run_id == run_id, loan_scores.c.model_version == model_version
    )
    return list((await session.execute(query)).scalars())
