"""`loan-engine rules list | show | diff` over the shipped rule sets (SPEC §7)."""

import json

from typer.testing import CliRunner

from services.cli.main import app

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_rules_list_marks_the_current_version() -> None:
    result = runner.invoke(app, ["rules", "list", "--json"])
    assert result.exit_code == 0, result.output
    body = last_json(result.output)
    assert body["current"] == "2026.11.1"
    listed = {item["version"]: item["current"] for item in body["rule_sets"]}
    assert listed["2026.11.1"] is True and listed["2026.12.1"] is False


def test_rules_show_prints_a_versions_rules() -> None:
    result = runner.invoke(app, ["rules", "show", "2026.12.1", "--json"])
    assert result.exit_code == 0, result.output
    rules = {rule["name"]: rule for rule in last_json(result.output)["rules"]}
    assert rules["ltv_ratio"]["maximum"] == "90.0"
    text = runner.invoke(app, ["rules", "show", "2026.12.1"])
    assert "ltv_ratio" in text.output and "maximum 90.0" in text.output


def test_rules_diff_names_the_changed_threshold() -> None:
    result = runner.invoke(app, ["rules", "diff", "2026.11.1", "2026.12.1", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["thresholds_changed"] == [
        {"rule": "ltv_ratio", "setting": "maximum", "before": "97.0", "after": "90.0"}
    ]
    text = runner.invoke(app, ["rules", "diff", "2026.11.1", "2026.12.1"])
    assert "ltv_ratio.maximum: 97.0 -> 90.0" in text.output


def test_an_unknown_version_is_bad_usage() -> None:
    result = runner.invoke(app, ["rules", "show", "1999.1.1"])
    assert result.exit_code == 2
    assert "unknown rule set version" in result.output


def test_a_reprocess_with_a_malformed_loan_id_is_bad_usage() -> None:
    run = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    result = runner.invoke(app, ["runs", "reprocess", run, "--loan-id", "not-a-uuid"])
    assert result.exit_code == 2
