"""The eligibility rule count a run's conformance is divided by: from its rule-set version."""

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.rule_sets import UnknownRuleSet, eligibility_rule_count
from services.gateway.tables import loan_facts


async def rule_set_version_of_run(session: AsyncSession, run_id: UUID) -> str | None:
    """The rule-set version the run's loans were evaluated with (None before any was).

    Its first loan by the primary key: without the ORDER BY, the planner guesses a run's loans
    are everywhere in the table and scans it from the start, which for the run being appended
    meant reading every earlier run's loans first (1.1 s at 1,000,000 under a run)."""
    c = loan_facts.c
    query = select(c.rule_set_version).where(c.run_id == run_id).order_by(c.seq).limit(1)
    return await session.scalar(query)


async def rules_total_of_run(session: AsyncSession, run_id: UUID) -> int:
    """The run's eligibility rule count; the current version's for a run without loans yet."""
    version = await rule_set_version_of_run(session, run_id)
    try:
        return eligibility_rule_count(version)
    except UnknownRuleSet:
        # Evaluated by a version this gateway does not ship: the current count is the best guess.
        return eligibility_rule_count()
