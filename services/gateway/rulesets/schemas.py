"""Rule-set shapes: the versions shipped, one version's rules, a diff (contracts.rule_sets)."""

from pydantic import BaseModel, Field

from contracts.rule_sets import RuleSetDocument


class RuleSetSummary(BaseModel):
    """One shipped rule-set version."""

    version: str = Field(examples=["2026.12.1"])
    description: str
    current: bool = Field(description="Whether runs use it unless they ask for another.")
    eligibility_rules: int = Field(description="Rules a loan is checked against (§3.3).")


class RuleSetResponse(RuleSetSummary):
    """One version's whole rule set."""

    document: RuleSetDocument
