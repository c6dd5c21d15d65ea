"""What docs/monitoring ships: the alerting rules pass `promtool check rules` and their unit tests
(`promtool test rules`: each alert fires when it should and not before), and the rules and the
Grafana dashboard query only metrics the service exports, as read from a real /metrics over an
index with builds, runs, searches and an audit."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deployment import app_client, create_key
from tests.search_api.conftest import auth

SCRAPE_TOKEN = "scrape-token-of-the-monitoring-test"  # what Prometheus sends (PKS_METRICS_TOKEN)

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "docs" / "monitoring"
RULES = MONITORING / "pks-alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)")
PROMTOOL = pytest.mark.needs_program("promtool", "apt-get install prometheus")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=MONITORING,
                          timeout=120)


@PROMTOOL
def test_the_rules_are_valid_prometheus_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


@PROMTOOL
def test_each_alert_fires_when_it_should_and_not_before() -> None:
    tested = promtool("test", "rules", "pks-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((MONITORING / "pks-alerts.test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == fired == {"PksNoSuccessfulBuild", "PksBuildFailed", "PksSkippedFilesRose",
                               "PksAuditWriteFailures"}


@PROMTOOL
def test_the_example_prometheus_configuration_scrapes_with_a_credential(tmp_path: Path) -> None:
    """The whole check (rule files included) on a copy whose key file exists."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    key = tmp_path / "pks-metrics.key"
    key.write_text("pks_0123456789ab_example\n")
    job["authorization"]["credentials_file"] = str(key)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / RULES.name).write_text(RULES.read_text())
    checked = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


@pytest.fixture(scope="module")
def exported(history: tuple[Path, Path]) -> set[str]:
    """Every sample name of a real /metrics: after builds and runs (the history's index), a
    search, a refused request and a lost audit record."""
    index = history[1]
    key = create_key(index, "alpha", "monitoring")
    with app_client(index, metrics_token=SCRAPE_TOKEN) as client:
        assert client.post("/v1/search", json={"query": "KESTREL", "top_k": 3},
                           headers=auth(key)).status_code == 200
        assert client.get("/v1/admin/builds", headers=auth(key)).status_code == 403
        client.app.state.services.metrics.audit_write_failed()
        text = client.get("/metrics", headers=auth(SCRAPE_TOKEN)).text  # as Prometheus asks
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def selectors(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana's range variables made concrete)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif hasattr(node, "expr"):  # parentheses, unary minus, subqueries
            walk(node.expr)

    walk(promql_parser.parse(GRAFANA_RANGES.sub("5m", expr)))
    return names


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":  # label_values(METRIC, label)
            found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert found, variable["definition"]
            queries.append(found.group(1))
    return queries


def test_the_dashboard_and_the_rules_query_only_exported_metrics(exported: set[str]) -> None:
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = {name for expr in [*rules, *dashboard_queries()] for name in selectors(expr)}
    assert used - exported == set()
    # And every figure the service exports has its place on the dashboard.
    shown = {family(name) for expr in dashboard_queries() for name in selectors(expr)}
    assert {family(n) for n in exported if not n.endswith("_created")} - shown == set()


def family(sample: str) -> str:
    """A histogram's samples belong to one figure: NAME_bucket, NAME_sum, NAME_count -> NAME."""
    return re.sub(r"_(bucket|sum|count)$", "", sample)


def test_the_dashboard_is_a_grafana_dashboard_over_one_prometheus() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and all(t["refId"] for t in panel["targets"])
