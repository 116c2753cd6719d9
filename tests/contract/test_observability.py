"""deploy/observability/ speaks only of what the services export: every metric its alert rules
and its Grafana dashboard query is one a service defines (read from the services' own metric
definitions, built as each service builds them), every alert says what it means and what to do,
and every query is valid PromQL (promtool's parser; CI installs it, see .ci/run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from mailbridge.config_api.entrypoints.observability import PrometheusMiddleware
from mailbridge.devstack.contract import BLUEPRINTS
from mailbridge.shared.service import unconnected

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "observability" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "observability" / "grafana-dashboard.json"
README = ROOT / "README.md"
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every scrape target
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
METRIC_NAME = re.compile(r"\bmailbridge_[a-z0-9_]+\b|\bup(?=\{)")
SEVERITIES = {"critical", "warning"}


def exported_series() -> set[str]:
    """Every series name the four services can expose, from the registries their blueprints
    fill (on unconnected resources, as the contract generator builds them) and config-api's
    HTTP middleware."""
    registries = [
        unconnected(blueprint, settings.model_construct(), TracerProvider()).registry
        for blueprint, settings in BLUEPRINTS.values()
    ]
    http = CollectorRegistry()
    PrometheusMiddleware(app=None, registry=http)  # type: ignore[arg-type]  # never called
    return {name for registry in (*registries, http) for name in _series(registry)}


def _series(registry: CollectorRegistry) -> Iterator[str]:
    for family in registry.collect():
        for suffix in SERIES_SUFFIXES[family.type]:
            yield family.name + suffix


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def all_queries() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_queries()


async def test_every_metric_queried_is_one_a_service_exports() -> None:
    """Async: an unconnected pool still wants the running loop (asyncpg asks for it)."""
    known = exported_series() | PROMETHEUS_OWN
    used = {name for query in all_queries() for name in METRIC_NAME.findall(query)}
    assert used, "the queries name no metric at all"
    assert sorted(used - known) == []


def test_the_operators_metrics_are_all_watched() -> None:
    """What issue 15 asks an operator to see has a panel: a metric renamed in a service and
    not on the dashboard fails here, not on the day it is needed."""
    used = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    for needed in (
        "mailbridge_worker_commands_total",
        "mailbridge_worker_send_seconds_bucket",
        "mailbridge_worker_consumer_pending",
        "mailbridge_oauth_token_refreshes_total",
        "mailbridge_policy_send_decisions_total",
        "mailbridge_outbox_lag_seconds",
    ):
        assert needed in used, needed


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_says_what_it_means_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    for key in ("summary", "description", "runbook"):
        assert annotations.get(key, "").strip(), f"{rule['alert']} has no {key}"
    assert f"`{rule['alert']}`" in README.read_text(), "the README's Operations section says more"


def test_the_dashboard_is_one_grafana_imports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"]["uid"] == "${datasource}"  # the dashboard's chosen Prometheus
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


@pytest.mark.parametrize("query", all_queries())
def test_each_query_is_balanced(query: str) -> None:
    """What can be checked without promtool: brackets close in order, quotes pair."""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"[^"]*"', '""', query):
        if char in "([{":
            stack.append(char)
        elif char in closing:
            assert stack and stack.pop() == closing[char], query
    assert stack == [] and query.count('"') % 2 == 0, query


def test_the_rules_and_the_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: `make install` installs it (prometheus)"
    recorded = [
        {"record": f"mailbridge:dashboard_query_{n}", "expr": expr}
        for n, expr in enumerate(dashboard_queries())
    ]
    dashboard_rules = tmp_path / "dashboard-queries.yaml"
    dashboard_rules.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": recorded}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS), str(dashboard_rules)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
