"""Validation, eligibility and data quality of one loan under a versioned rule set (SPEC §3.2-3.4).

The rules are data (`rule_sets/<version>.json`); `evaluate` is the one interpreter over them.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, get_args

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS, Category, Severity
from contracts.numbers import finite_decimal as _decimal
from contracts.quality import half_even, sums_of
from contracts.quality import run_quality as means_of
from contracts.rule_sets import CURRENT_VERSION
from contracts.wire import LoanException, LoanRecord, QualityCounts

RULE_SETS = Path(__file__).parent / "rule_sets"
VALIDATION_KINDS = ("missing_field", "invalid_field", "duplicate_loan")
CHECKS = ("range", "greater_than", "one_of")
_VERSION = re.compile(r"\d+(\.\d+)*")

Check = Literal["range", "greater_than", "one_of"]

# A loan's field values are read as one tuple in LOAN_FIELDS order (one C call instead of eleven
# getattr per loan), so every field is looked up by its position in it.
_field_values = attrgetter(*LOAN_FIELDS)
_POSITION = {name: position for position, name in enumerate(LOAN_FIELDS)}
_INFINITY = Decimal("Infinity")
_NUMERIC_POSITIONS = tuple((_POSITION[name], name) for name in NUMERIC_FIELDS)


class RuleSetError(ValueError):
    """A rule set that is unknown or does not describe usable rules."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a failed check raises: the exception's fixed fields, its message a format template."""

    name: str
    category: Category
    severity: Severity
    rejection_criteria: str
    message: str

    def exception(self, **values: object) -> LoanException:
        """The exception this outcome raises, its message filled with `values`."""
        return LoanException(
            exception_type=self.name,
            category=self.category,
            severity=self.severity,
            message=self.message.format(**values),
            rejection_criteria=self.rejection_criteria,
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """One eligibility rule: a check on one loan field, with a default for a missing value."""

    outcome: Outcome
    field: str
    check: Check
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    allowed: frozenset[str] = frozenset()
    default: str | None = None
    # Built once: a failed rule's exception never varies, and contracts are immutable.
    failure: LoanException = field(init=False, repr=False, compare=False)
    numeric: bool = field(init=False, repr=False, compare=False)
    """Whether the rule compares its field as a number (a field, not a property: read per loan)."""
    position: int = field(init=False, repr=False, compare=False)
    """The field's position in a loan's values (`LoanFields` order)."""
    _fallback: str | Decimal | None = field(init=False, repr=False, compare=False)
    # The bounds with a missing one as an infinity, so a check is one comparison; a
    # greater_than without a minimum (which parse_rule_set refuses) passes nothing.
    _low: Decimal = field(init=False, repr=False, compare=False)
    _high: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numeric = self.check != "one_of"
        parse = numeric and self.default is not None
        object.__setattr__(self, "failure", self.outcome.exception())
        object.__setattr__(self, "numeric", numeric)
        object.__setattr__(self, "position", _POSITION[self.field])
        object.__setattr__(self, "_fallback", _decimal(self.default) if parse else self.default)
        object.__setattr__(self, "_low", _INFINITY if self.minimum is None else self.minimum)
        object.__setattr__(self, "_high", _INFINITY if self.maximum is None else self.maximum)
        if self.check == "range" and self.minimum is None:
            object.__setattr__(self, "_low", -_INFINITY)

    @property
    def name(self) -> str:
        """The rule's name, which is also its exception type."""
        return self.outcome.name

    def passes(self, value: str | Decimal | None) -> bool:
        """Whether a field value (trimmed text or parsed number; None if missing) passes."""
        given = self._fallback if value is None else value
        if given is None:
            return False
        if not self.numeric:
            return str(given).strip().lower() in self.allowed
        number = given if isinstance(given, Decimal) else _decimal(given)
        if number is None:
            return False
        if self.check == "greater_than":
            return number > self._low
        return self._low <= number <= self._high


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A versioned rule set: required fields, the three validation checks, eligibility rules."""

    version: str
    required_fields: tuple[str, ...]
    validation: Mapping[str, Outcome]
    rules: tuple[Rule, ...]


class Evaluation(NamedTuple):
    """A loan's exceptions (validation first, then rules in table order) and quality counts.

    A named tuple, not a frozen dataclass: one is built per loan, at a third of the cost."""

    exceptions: tuple[LoanException, ...]
    quality: QualityCounts


@dataclass(frozen=True, slots=True)
class RunQuality:
    """A run's mean quality dimensions (4 decimals) and mean dq_score (2 decimals)."""

    loans: int
    completeness: Decimal
    validity: Decimal
    uniqueness: Decimal
    conformance: Decimal
    dq_score: Decimal


def evaluate(loan: LoanRecord, rule_set: RuleSet) -> Evaluation:
    """Validate a loan, check its eligibility unless validation failed, and count its quality."""
    # Each field's text, or None when it is missing (absent or blank).
    values = [
        value if value is not None and value.strip() else None
        for value in _field_values(loan.fields)
    ]
    numbers: list[Decimal | None] = [None] * len(values)
    invalid_names: list[str] = []
    numeric_present = 0
    for position, name in _NUMERIC_POSITIONS:
        if (text := values[position]) is None:
            continue
        numeric_present += 1
        number = None if name in loan.invalid else _decimal(text)
        if number is None:
            invalid_names.append(name)
        else:
            numbers[position] = number
    invalid = tuple(invalid_names)
    exceptions = _validate(loan, values, invalid, rule_set)
    passed = 0
    if not exceptions:
        exceptions = tuple(
            [
                rule.failure
                for rule in rule_set.rules
                if not rule.passes((numbers if rule.numeric else values)[rule.position])
            ]
        )
        passed = len(rule_set.rules) - len(exceptions)
    quality = _quality(
        len(values) - values.count(None),
        numeric_present,
        numeric_present - len(invalid),
        loan.duplicate_of is None,
        passed,
        len(rule_set.rules),
    )
    return Evaluation(exceptions, quality)


def run_quality(counts: Iterable[QualityCounts], rules_total: int | None = None) -> RunQuality:
    """Per-run means of each quality dimension and of the loans' (already rounded) dq_scores."""
    total = len(load_rule_set().rules) if rules_total is None else rules_total
    sums = sums_of(counts)
    means = means_of(sums, total)
    return RunQuality(
        sums.loans,
        means.completeness,
        means.validity,
        means.uniqueness,
        means.conformance,
        means.dq_score,
    )


@cache
def load_rule_set(version: str | None = None) -> RuleSet:
    """The rule set of `version` shipped in rule_sets/ (default: the current one)."""
    wanted = CURRENT_VERSION if version is None else version
    path = RULE_SETS / f"{wanted}.json"
    if not _VERSION.fullmatch(wanted) or not path.is_file():
        raise RuleSetError(f"unknown rule set version {wanted!r}")
    return parse_rule_set(json.loads(path.read_text(encoding="utf-8")))


def parse_rule_set(data: Mapping[str, Any]) -> RuleSet:
    """A rule set from its JSON data, checked so the interpreter never meets a bad rule."""
    try:
        validation = MappingProxyType({item["name"]: _outcome(item) for item in data["validation"]})
        rules = tuple(_rule(item) for item in data["rules"])
        rule_set = RuleSet(str(data["version"]), tuple(data["required_fields"]), validation, rules)
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise RuleSetError(f"malformed rule set: {error!r}") from error
    if sorted(validation) != sorted(VALIDATION_KINDS):
        raise RuleSetError(f"validation must define exactly {', '.join(VALIDATION_KINDS)}")
    if not set(rule_set.required_fields) <= set(LOAN_FIELDS):
        raise RuleSetError("required fields must be loan fields")
    if len({rule.name for rule in rules}) != len(rules):
        raise RuleSetError("rule names must be unique")
    return rule_set


def _outcome(item: Mapping[str, Any]) -> Outcome:
    category, severity = item["category"], item["severity"]
    if category not in get_args(Category) or severity not in get_args(Severity):
        raise ValueError(f"{item['name']!r}: unknown category or severity")
    return Outcome(item["name"], category, severity, item["rejection_criteria"], item["message"])


def _rule(item: Mapping[str, Any]) -> Rule:
    check, name = item["check"], item["field"]
    numeric = check in ("range", "greater_than")
    if check not in CHECKS or name not in (NUMERIC_FIELDS if numeric else LOAN_FIELDS):
        raise ValueError(f"rule {item['name']!r}: check {check!r} cannot apply to field {name!r}")
    bounds = [_bound(item.get(key)) for key in ("minimum", "maximum")]
    if (check == "greater_than" and bounds[0] is None) or (
        check == "range" and bounds == [None, None]
    ):
        raise ValueError(f"rule {item['name']!r}: check {check!r} needs its bounds")
    if check == "one_of" and not item.get("allowed"):
        raise ValueError(f"rule {item['name']!r}: check 'one_of' needs allowed values")
    default = item.get("default")
    if (
        numeric
        and default is not None
        and (not isinstance(default, str) or _decimal(default) is None)
    ):
        raise ValueError(f"rule {item['name']!r}: default {default!r} is not a number")
    allowed = frozenset(value.strip().lower() for value in item.get("allowed", ()))
    return Rule(_outcome(item), name, check, *bounds, allowed=allowed, default=default)


def _bound(text: object) -> Decimal | None:
    """A bound from its text; text only, so no binary float ever becomes a bound."""
    if text is None:
        return None
    number = _decimal(text) if isinstance(text, str) else None
    if number is None:
        raise ValueError(f"bound {text!r} is not a number written as text")
    return number


def _validate(
    loan: LoanRecord,
    values: list[str | None],
    invalid: tuple[str, ...],
    rule_set: RuleSet,
) -> tuple[LoanException, ...]:
    found: list[LoanException] = []
    missing = [name for name in rule_set.required_fields if values[_POSITION[name]] is None]
    if missing:
        found.append(rule_set.validation["missing_field"].exception(fields=", ".join(missing)))
    if invalid:
        found.append(rule_set.validation["invalid_field"].exception(fields=", ".join(invalid)))
    if loan.duplicate_of is not None:
        first = loan.duplicate_of
        outcome = rule_set.validation["duplicate_loan"]
        found.append(outcome.exception(row=first.row, source_file=first.source_file))
    return tuple(found)


@cache
def _quality(
    present_fields: int,
    numeric_present: int,
    numeric_valid: int,
    unique: bool,
    rules_passed: int,
    rules_total: int,
) -> QualityCounts:
    """A loan's quality counts and score; cached, as there are only a few thousand of them."""
    counts = (present_fields, numeric_present, numeric_valid, unique, rules_passed)
    score = 100 * sum(_dimensions(*counts, rules_total)) / 4
    return QualityCounts(
        present_fields=present_fields,
        numeric_present=numeric_present,
        numeric_valid=numeric_valid,
        unique=unique,
        rules_passed=rules_passed,
        dq_score=half_even(score, 2),
    )


def _dimensions(
    present_fields: int,
    numeric_present: int,
    numeric_valid: int,
    unique: bool,
    rules_passed: int,
    rules_total: int,
) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """Completeness, validity, uniqueness and conformance, exactly (SPEC §3.4)."""
    validity = Fraction(numeric_valid, numeric_present) if numeric_present else Fraction(1)
    return (
        Fraction(present_fields, len(LOAN_FIELDS)),
        validity,
        Fraction(int(unique)),
        Fraction(rules_passed, rules_total) if rules_total else Fraction(0),
    )
