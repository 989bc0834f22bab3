"""The eligibility rule count a run's conformance is divided by: from its rule-set version."""

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.rule_sets import UnknownRuleSet, eligibility_rule_count
from services.gateway.tables import loan_facts


async def rule_set_version_of_run(session: AsyncSession, run_id: UUID) -> str | None:
    """The rule-set version the run's loans were evaluated with (None before any was)."""
    query = select(loan_facts.c.rule_set_version).where(loan_facts.c.run_id == run_id).limit(1)
    return await session.scalar(query)


async def rules_total_of_run(session: AsyncSession, run_id: UUID) -> int:
    """The run's eligibility rule count; the current version's for a run without loans yet."""
    version = await rule_set_version_of_run(session, run_id)
    try:
        return eligibility_rule_count(version)
    except UnknownRuleSet:
        # Evaluated by a version this gateway does not ship: the current count is the best guess.
        return eligibility_rule_count()
