"""`loan-engine rules list | show VERSION | diff V1 V2`: the shipped rule-set versions (SPEC §7).

Rule sets are versioned data; these commands read the same documents the rules service runs
(`contracts.rule_sets`), so they need no running stack.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from contracts import rule_sets
from contracts.rule_sets import UnknownRuleSet
from services.cli.options import JsonOption

app = typer.Typer(help="Rule sets: the versions shipped, one version, what changed.")


def _document(version: str) -> rule_sets.RuleSetDocument:
    try:
        return rule_sets.load(version)
    except UnknownRuleSet as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, default=str))


@app.command("list")
def list_rule_sets(as_json: JsonOption = False) -> None:
    """Every shipped version, oldest first; `*` marks the one runs use by default."""
    documents = [rule_sets.load(version) for version in rule_sets.versions()]
    if as_json:
        _emit(
            {
                "current": rule_sets.CURRENT_VERSION,
                "rule_sets": [
                    {
                        "version": d.version,
                        "description": d.description,
                        "current": d.version == rule_sets.CURRENT_VERSION,
                        "eligibility_rules": len(d.rules),
                    }
                    for d in documents
                ],
            }
        )
        return
    for d in documents:
        mark = "*" if d.version == rule_sets.CURRENT_VERSION else " "
        typer.echo(f"{mark} {d.version:<12} {len(d.rules):>2} rules  {d.description}")


@app.command("show")
def show(version: str, as_json: JsonOption = False) -> None:
    """One version's required fields and rules."""
    document = _document(version)
    if as_json:
        _emit(document.model_dump(mode="json"))
        return
    typer.echo(f"rule set {document.version}: {document.description}")
    typer.echo(f"  required: {', '.join(document.required_fields)}")
    for rule in document.rules:
        bounds = ", ".join(
            f"{key} {value}"
            for key in ("minimum", "maximum", "default")
            if (value := getattr(rule, key)) is not None
        )
        allowed = f" allowed {', '.join(rule.allowed)}" if rule.allowed else ""
        typer.echo(
            f"  {rule.name:<24} {rule.check:<12} {rule.field:<16} {rule.severity:<4} "
            f"{bounds}{allowed}"
        )


@app.command("diff")
def diff(before: str, after: str, as_json: JsonOption = False) -> None:
    """Rules added and removed, and thresholds changed, from BEFORE to AFTER."""
    found = rule_sets.diff(_document(before), _document(after))
    if as_json:
        _emit(found.model_dump(mode="json"))
        return
    typer.echo(f"rule set {found.before} -> {found.after}")
    for name in found.rules_added:
        typer.echo(f"  + {name}")
    for name in found.rules_removed:
        typer.echo(f"  - {name}")
    for change in found.thresholds_changed:
        typer.echo(f"  ~ {change.rule}.{change.setting}: {change.before} -> {change.after}")
    for name in found.required_fields_added:
        typer.echo(f"  + required {name}")
    for name in found.required_fields_removed:
        typer.echo(f"  - required {name}")
    if not (found.rules_added or found.rules_removed or found.thresholds_changed):
        typer.echo("  no rule changed")
