"""Rule sets are versioned data files shipped with the rules service (contracts.rule_sets)."""

from contracts import rule_sets
from contracts.rule_sets import RuleSetDocument, UnknownRuleSet
from services.gateway.errors import NotFound


def all_versions() -> list[RuleSetDocument]:
    """Every shipped version, oldest first."""
    return [rule_sets.load(version) for version in rule_sets.versions()]


def get_by_version(version: str) -> RuleSetDocument | None:
    """One version's document, or None when it is not shipped."""
    try:
        return rule_sets.load(version)
    except UnknownRuleSet:
        return None


def require(version: str) -> RuleSetDocument:
    """One version's document; 404 when it is not shipped."""
    document = get_by_version(version)
    if document is None:
        raise NotFound(f"Unknown rule set version {version!r}")
    return document
