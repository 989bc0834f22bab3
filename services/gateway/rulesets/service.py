"""Rule sets as the API shows them."""

from contracts.rule_sets import CURRENT_VERSION, RuleSetDocument
from services.gateway.rulesets.schemas import RuleSetResponse, RuleSetSummary


def summary(document: RuleSetDocument) -> RuleSetSummary:
    """A version's line in the list."""
    return RuleSetSummary(
        version=document.version,
        description=document.description,
        current=document.version == CURRENT_VERSION,
        eligibility_rules=len(document.rules),
    )


def detail(document: RuleSetDocument) -> RuleSetResponse:
    """A version with its whole document."""
    return RuleSetResponse(**summary(document).model_dump(), document=document)
