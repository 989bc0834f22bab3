"""The Prometheus and Grafana files: valid for promtool, and using only metrics we define."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import services.scoring.metrics  # noqa: F401 - registers scoring's metrics
from services.common import governance_metrics  # noqa: F401 - its metrics join the registry
from services.common.metrics import exported_metric_names
from tests.unit.observability.monitoring_files import (
    ALERT_RULES,
    DASHBOARD_PROVIDERS,
    DASHBOARDS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    PROMETHEUS_SERIES,
    alert_rules,
    dashboard_panels,
    dashboard_queries,
    defined_metrics,
    load_yaml,
    metric_names,
    required_tool,
    substitute_grafana_variables,
)

SERVICE_PORTS = {
    "gateway": 8000,
    "ingest": 8101,
    "rules": 8102,
    "pricing": 8103,
    "reporting": 8104,
    "projector": 8105,
    "scoring": 8106,
    "jobs": 8107,
}
KNOWN = exported_metric_names() | PROMETHEUS_SERIES
README = PROMETHEUS_CONFIG.parent / "README.md"


def test_the_metric_name_extractor_ignores_functions_labels_and_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{status=~"5..",x="y z"}'
        "[$__rate_interval]))) / on (route) group_left () b offset 10m"
        " or vector(0) unless c_total > bool 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}


def test_every_dashboard_query_uses_only_metrics_the_registry_defines() -> None:
    queries = dashboard_queries()
    assert queries, "no dashboard queries found"
    unknown = {(title, name) for title, expr in queries for name in metric_names(expr) - KNOWN}
    assert unknown == set()


def test_every_alert_uses_only_metrics_the_registry_defines() -> None:
    rules = alert_rules()
    assert rules, "no alert rules found"
    unknown = {
        (rule["alert"], name) for rule in rules for name in metric_names(rule["expr"]) - KNOWN
    }
    assert unknown == set()


def test_alerts_cover_lag_dead_letters_failed_runs_and_a_service_down() -> None:
    used = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert {
        "loan_engine_consumer_lag",
        "loan_engine_dead_letters_total",
        "loan_engine_runs_total",
        "up",
    } <= used


def test_prometheus_scrapes_every_service_at_its_port() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {name: [f"127.0.0.1:{port}"] for name, port in SERVICE_PORTS.items()}


def test_no_scrape_target_label_clashes_with_a_metric_label() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    target_labels = {
        label
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for label in static.get("labels", {})
    }
    assert target_labels & {"service", "topic", "route", "status", "stage"} == set()


def test_prometheus_config_passes_promtool() -> None:
    promtool = required_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool() -> None:
    promtool = required_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = required_tool("promtool")
    rules = [
        {"record": f"dashboard:query_{index}", "expr": substitute_grafana_variables(expr)}
        for index, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_dashboard_panel_reads_the_provisioned_datasource(path: Path) -> None:
    uid = load_yaml(DATASOURCES)["datasources"][0]["uid"]
    panels = [panel for panel in dashboard_panels(path) if panel["type"] != "row"]
    assert panels
    assert {panel["datasource"]["uid"] for panel in panels} == {uid}
    assert {t["datasource"]["uid"] for panel in panels for t in panel["targets"]} == {uid}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_panels_have_unique_ids_and_every_panel_has_a_query(path: Path) -> None:
    panels = dashboard_panels(path)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert all(panel.get("targets") for panel in panels if panel["type"] != "row")


def test_dashboards_cover_throughput_lag_runs_exceptions_and_the_api() -> None:
    used = {name for _, expr in dashboard_queries() for name in metric_names(expr)}
    assert {
        "loan_engine_loans_processed_total",
        "loan_engine_consumer_lag",
        "loan_engine_runs_total",
        "loan_engine_exceptions_total",
        "loan_engine_http_request_duration_seconds_bucket",
        "loan_engine_http_requests_total",
    } <= used


def test_every_metric_any_service_defines_is_documented_in_the_monitoring_readme() -> None:
    readme = README.read_text()
    defined = defined_metrics()
    assert "loan_engine_events_consumed_total" in defined
    assert {name: str(path) for name, path in defined.items() if f"`{name}`" not in readme} == {}


def test_every_process_metric_and_alert_is_documented_in_the_monitoring_readme() -> None:
    readme = README.read_text()
    process = {name for name in KNOWN if name.startswith("loan_engine_process_")}
    assert process
    assert {name for name in process if f"`{name}`" not in readme} == set()
    assert {rule["alert"] for rule in alert_rules() if f"`{rule['alert']}`" not in readme} == set()


def test_grafana_loads_dashboards_from_a_folder_named_by_the_environment() -> None:
    provider = load_yaml(DASHBOARD_PROVIDERS)["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${LOAN_ENGINE_GRAFANA_DASHBOARDS}"


def drift_alert_test(loans: int) -> dict[str, Any]:
    """A promtool unit test: ltv_ratio's PSI jumps to 0.31 over a run of `loans` loans."""
    rule = next(rule for rule in alert_rules() if rule["alert"] == "LoanEngineModelDrift")
    annotations = {
        name: text.replace("{{ $labels.feature }}", "ltv_ratio").replace("{{ $value }}", "0.31")
        for name, text in rule["annotations"].items()
    }
    firing = [
        {
            "exp_labels": {"severity": "warning", "feature": "ltv_ratio"},
            "exp_annotations": annotations,
        }
    ]
    return {
        "rule_files": [str(ALERT_RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": 'loan_engine_model_feature_psi{feature="ltv_ratio"}',
                        "values": "0.05 0.05 0.31 0.31",
                    },
                    {
                        "series": 'loan_engine_model_feature_psi{feature="credit_score"}',
                        "values": "0.01 0.01 0.01 0.01",
                    },
                    {
                        "series": "loan_engine_model_drift_loans",
                        "values": f"{loans} {loans} {loans} {loans}",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "15s", "alertname": "LoanEngineModelDrift", "exp_alerts": []},
                    {
                        "eval_time": "45s",
                        "alertname": "LoanEngineModelDrift",
                        "exp_alerts": firing if loans >= 500 else [],
                    },
                ],
            }
        ],
    }


@pytest.mark.parametrize("loans", [2000, 100])
def test_model_drift_alert_fires_on_a_psi_above_point_two_over_at_least_500_loans(
    tmp_path: Path, loans: int
) -> None:
    promtool = required_tool("promtool")
    path = tmp_path / "drift-test.yml"
    path.write_text(yaml.safe_dump(drift_alert_test(loans)))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
