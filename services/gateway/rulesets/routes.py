"""`/rule-sets`: the shipped versions, one version, and what changed between two."""

from fastapi import APIRouter, Depends

from contracts import rule_sets
from contracts.rule_sets import RuleSetDiff
from services.gateway.deps import get_current_user
from services.gateway.rulesets import repository as repo
from services.gateway.rulesets.schemas import RuleSetResponse, RuleSetSummary
from services.gateway.rulesets.service import detail, summary

router = APIRouter(
    prefix="/rule-sets", tags=["rule sets"], dependencies=[Depends(get_current_user)]
)


@router.get("", response_model=list[RuleSetSummary])
async def list_rule_sets() -> list[RuleSetSummary]:
    """Every rule-set version, oldest first; `current` marks the one runs use by default."""
    return [summary(document) for document in repo.all_versions()]


@router.get("/{version}", response_model=RuleSetResponse)
async def get_rule_set(version: str) -> RuleSetResponse:
    """One rule-set version's rules; 404 if it is not shipped."""
    return detail(repo.require(version))


@router.get("/{version}/diff/{other}", response_model=RuleSetDiff)
async def diff_rule_sets(version: str, other: str) -> RuleSetDiff:
    """Rules added and removed, and settings changed, from `version` to `other`."""
    return rule_sets.diff(repo.require(version), repo.require(other))
