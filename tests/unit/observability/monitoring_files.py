"""Reading the monitoring infra (dashboards, alerts, scrape config) and the metric names it uses."""

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "services"
PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"
GRAFANA_DIR = ROOT / "infra" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"

# Series Prometheus makes itself for every target, rather than any service exporting them.
PROMETHEUS_SERIES = frozenset({"up"})
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKENS = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?|[A-Za-z_:][A-Za-z0-9_:]*")
_DEFINITIONS = re.compile(r'\b(?:Counter|Gauge|Histogram|Summary)\(\s*"(loan_engine_\w+)"')
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
)


def substitute_grafana_variables(expr: str) -> str:
    """A dashboard query with Grafana's built-in interval variables made concrete."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and durations excluded)."""
    text = substitute_grafana_variables(expr)
    for pattern in (_STRINGS, _LABEL_MATCHERS, _RANGES, _GROUPING):
        text = pattern.sub(" ", text)
    names: set[str] = set()
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):  # a function or an aggregation
            continue
        names.add(token)
    return names


def defined_metrics() -> dict[str, Path]:
    """Every metric any service defines, found in the source (no import order involved)."""
    return {
        name: path
        for path in sorted(SERVICES.rglob("*.py"))
        for name in _DEFINITIONS.findall(path.read_text())
    }


def load_yaml(path: Path) -> Any:
    """A YAML file's content."""
    return yaml.safe_load(path.read_text())


def dashboard_panels(path: Path) -> list[dict[str, Any]]:
    """Every panel of a dashboard, those nested in collapsed rows included."""
    panels: list[dict[str, Any]] = []
    for panel in json.loads(path.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query target of every dashboard."""
    return [
        (panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in dashboard_panels(path)
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of infra/prometheus/alerts.yml."""
    groups = load_yaml(ALERT_RULES)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def required_tool(name: str) -> str:
    """The path of a command-line tool; missing, it fails in CI and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package `prometheus`)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
