"""Rule sets as versioned data (SPEC §3.3, §7): the document shape, where versions live, a diff.

The rules service interprets a rule set (`services/rules/domain.py`); everything else (the
gateway's `/rule-sets`, the CLI's `rules list|show|diff`, run data-quality means) reads the same
documents through this module. Pure: standard library and pydantic only.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from contracts.base import Contract

RULE_SETS_DIR = Path(__file__).resolve().parent.parent / "services" / "rules" / "rule_sets"
CURRENT_VERSION = "2026.11.1"
VERSION_PATTERN = re.compile(r"\d+(\.\d+)*")
THRESHOLD_KEYS = ("check", "field", "minimum", "maximum", "allowed", "default", "severity")


class UnknownRuleSet(LookupError):
    """No rule set of that version is shipped."""


class RuleDocument(Contract):
    """One validation outcome or eligibility rule as the JSON document writes it."""

    name: str
    field: str | None = None
    check: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    allowed: tuple[str, ...] | None = None
    default: str | None = None
    category: str
    severity: str
    rejection_criteria: str
    message: str


class RuleSetDocument(Contract):
    """A rule set file: version, required fields, validation outcomes and eligibility rules."""

    version: str
    description: str = ""
    required_fields: tuple[str, ...]
    validation: tuple[RuleDocument, ...]
    rules: tuple[RuleDocument, ...]


class ThresholdChange(Contract):
    """One setting of a rule that differs between two versions."""

    rule: str
    setting: str = Field(description="check, field, minimum, maximum, allowed, default, ...")
    before: Any = None
    after: Any = None


class RuleSetDiff(Contract):
    """What changed from one rule-set version to another."""

    before: str
    after: str
    rules_added: tuple[str, ...]
    rules_removed: tuple[str, ...]
    thresholds_changed: tuple[ThresholdChange, ...]
    required_fields_added: tuple[str, ...]
    required_fields_removed: tuple[str, ...]


def versions(directory: Path = RULE_SETS_DIR) -> list[str]:
    """Every shipped version, oldest first (versions compare number by number)."""
    found = [path.stem for path in directory.glob("*.json") if VERSION_PATTERN.fullmatch(path.stem)]
    return sorted(found, key=lambda text: tuple(int(part) for part in text.split(".")))


def load(version: str | None = None, directory: Path = RULE_SETS_DIR) -> RuleSetDocument:
    """The document of `version` (default: the current one); UnknownRuleSet when absent."""
    return _load(CURRENT_VERSION if version is None else version, directory)


@cache
def _load(version: str, directory: Path) -> RuleSetDocument:
    path = directory / f"{version}.json"
    if not VERSION_PATTERN.fullmatch(version) or not path.is_file():
        raise UnknownRuleSet(f"unknown rule set version {version!r}")
    return RuleSetDocument.model_validate(json.loads(path.read_text(encoding="utf-8")))


def eligibility_rule_count(version: str | None = None, directory: Path = RULE_SETS_DIR) -> int:
    """How many eligibility rules a version has: the divisor of its conformance (SPEC §3.4)."""
    return len(load(version, directory).rules)


def diff(before: RuleSetDocument, after: RuleSetDocument) -> RuleSetDiff:
    """Rules added and removed, and every setting of a kept rule that changed."""
    old = {rule.name: rule for rule in before.rules}
    new = {rule.name: rule for rule in after.rules}
    changes = [
        ThresholdChange(rule=name, setting=key, before=was, after=now)
        for name, rule in new.items()
        if name in old
        for key in THRESHOLD_KEYS
        if (was := getattr(old[name], key)) != (now := getattr(rule, key))
    ]
    return RuleSetDiff(
        before=before.version,
        after=after.version,
        rules_added=tuple(name for name in new if name not in old),
        rules_removed=tuple(name for name in old if name not in new),
        thresholds_changed=tuple(changes),
        required_fields_added=tuple(
            f for f in after.required_fields if f not in before.required_fields
        ),
        required_fields_removed=tuple(
            f for f in before.required_fields if f not in after.required_fields
        ),
    )
