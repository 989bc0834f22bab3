"""Rule sets as versioned data: the shipped versions, loading, and the diff between two."""

import pytest

from contracts import rule_sets
from contracts.rule_sets import UnknownRuleSet
from services.rules.domain import load_rule_set


def test_both_shipped_versions_are_listed_oldest_first() -> None:
    assert rule_sets.versions()[:2] == ["2026.11.1", "2026.12.1"]


def test_every_shipped_document_is_a_rule_set_the_rules_interpreter_accepts() -> None:
    for version in rule_sets.versions():
        document = rule_sets.load(version)
        assert load_rule_set(version).version == document.version == version
        assert len(load_rule_set(version).rules) == rule_sets.eligibility_rule_count(version)


def test_an_unknown_or_path_like_version_is_refused() -> None:
    for version in ("1999.1.1", "../2026.11.1", "latest"):
        with pytest.raises(UnknownRuleSet):
            rule_sets.load(version)


def test_the_december_version_differs_only_by_a_stricter_ltv_maximum() -> None:
    found = rule_sets.diff(rule_sets.load("2026.11.1"), rule_sets.load("2026.12.1"))
    assert (found.rules_added, found.rules_removed) == ((), ())
    assert [(c.rule, c.setting, c.before, c.after) for c in found.thresholds_changed] == [
        ("ltv_ratio", "maximum", "97.0", "90.0")
    ]


def test_a_diff_names_rules_added_and_removed_and_required_fields_changed() -> None:
    old = rule_sets.load("2026.11.1")
    rules = tuple(rule for rule in old.rules if rule.name != "dti_ratio")
    extra = old.rules[0].model_copy(update={"name": "jumbo_amount", "maximum": "3000000"})
    new = old.model_copy(
        update={
            "version": "9.9",
            "rules": (*rules, extra),
            "required_fields": (*old.required_fields, "dti_ratio"),
        }
    )
    found = rule_sets.diff(old, new)
    assert found.rules_added == ("jumbo_amount",)
    assert found.rules_removed == ("dti_ratio",)
    assert found.required_fields_added == ("dti_ratio",)
    assert found.thresholds_changed == ()
