"""Operations in process: /metrics only for admin keys and the scrape token, /readyz cheap, an
audit that cannot be written refuses every surface, and the token buckets of the rate limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from indexer.build import BuildReport
from search_api.access.budgets import TokenBuckets
from search_api.audit.files import AuditLog
from search_api.retrieval.live import IndexHolder
from search_api.settings import ApiSettings
from search_api.state.services import Services
from tests.deployment import app_client
from tests.search_api.conftest import Clock, auth

SCRAPE_TOKEN = "scrape-token-of-the-prometheus-job"


@pytest.fixture()
def guarded(access_index: tuple[Path, BuildReport], holder: IndexHolder,
            clock: Clock) -> Iterator[TestClient]:
    with app_client(access_index[0], holder=holder, today=clock,
                    metrics_token=SCRAPE_TOKEN) as client:
        yield client


def test_metrics_are_for_admins_and_the_scrape_token_only(
        guarded: TestClient, keys: dict[str, str]) -> None:
    """The totals (documents, chunks) and everyone's activity: never public, never a partner's."""
    anonymous = guarded.get("/metrics")
    assert anonymous.status_code == 401 and "pks_" not in anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"
    for who in ("alpha", "delta"):
        refused = guarded.get("/metrics", headers=auth(keys[who]))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert "pks_" not in refused.text
    assert guarded.get("/metrics", headers=auth(SCRAPE_TOKEN + "x")).status_code == 401
    for credentials in (keys["admin"], SCRAPE_TOKEN):
        answered = guarded.get("/metrics", headers=auth(credentials))
        assert answered.status_code == 200 and "pks_index_chunks" in answered.text
    assert guarded.get("/healthz").status_code == 200  # health and readiness stay open
    assert guarded.get("/readyz").status_code == 200


def test_a_short_scrape_token_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        ApiSettings(index=tmp_path, metrics_token="short")


def test_readiness_runs_its_query_at_most_once_per_interval(
        access_index: tuple[Path, BuildReport], holder: IndexHolder, clock: Clock) -> None:
    """/readyz answers without a key: a flood of it costs one search per interval, not one each."""
    with app_client(access_index[0], holder=holder, today=clock,
                    ready_check_seconds=3600) as client:
        readiness = client.app.state.services.readiness  # type: ignore[attr-defined]
        answers = [client.get("/readyz") for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        assert readiness.checks == 1
        assert answers[-1].json() == {"status": "ready",
                                      "generation": holder.get().generation.name}
    with app_client(access_index[0], holder=holder, today=clock,
                    ready_check_seconds=0.001) as client:
        readiness = client.app.state.services.readiness  # type: ignore[attr-defined]
        for _ in range(3):
            time.sleep(0.01)
            assert client.get("/readyz").status_code == 200
        assert readiness.checks == 3  # an expired outcome is checked again


def test_nothing_is_answered_that_the_audit_cannot_record(
        tmp_path: Path, access_index: tuple[Path, BuildReport], holder: IndexHolder,
        clock: Clock, keys: dict[str, str]) -> None:
    """A failing audit sink: every surface answers 503 (MCP: a tool error) with a message, and
    sends nothing it found; a hidden and a visible document fail alike."""
    (tmp_path / "audit").write_text("a file where the audit directory should be")

    def unwritable(services: Services) -> Services:
        return replace(services, audit=AuditLog(tmp_path, services.keys,
                                                observer=services.metrics))

    with app_client(access_index[0], holder=holder, today=clock, services=unwritable) as client:
        alpha = auth(keys["alpha"])
        answers = [
            client.post("/v1/search", json={"query": "KESTREL electrolyte"}, headers=alpha),
            client.post("/v1/search", json={"query": "KESTREL", "mode": "lexical"},
                        headers=alpha),
            client.post("/v1/retrieve", json={"query": "KESTREL electrolyte"}, headers=alpha),
            client.get("/v1/documents/alpha/electrolyte.txt", headers=alpha),
            client.get("/v1/documents/beta/sensors.md", headers=alpha),  # hidden: the same
        ]
        for response in answers:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "audit_unavailable"
            assert "cannot record this request" in response.json()["error"]["message"]
            assert "KESTREL" not in response.text and "14.2" not in response.text
        for response in answers:  # a request id to quote, the details only in the server log
            rid = response.headers["x-request-id"]
            assert f"request id {rid}" in response.json()["error"]["message"]
        assert answers[3].content.replace(answers[3].headers["x-request-id"].encode(), b"") == \
            answers[4].content.replace(answers[4].headers["x-request-id"].encode(), b"")
        tool = client.post("/mcp", headers={**alpha, "Accept": "application/json, "
                                            "text/event-stream"},
                           json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                               "name": "search_partner_knowledge",
                               "arguments": {"query": "KESTREL electrolyte"}}})
        result = tool.json()["result"]
        assert result["isError"] and "cannot record this request" in str(result["content"])
        assert "14.2" not in tool.text
        metrics = client.get("/metrics", headers=auth(keys["admin"])).text
        assert "pks_audit_write_failures_total 6.0" in metrics
        assert "pks_searches_total{" not in metrics  # nothing was answered


def test_token_buckets_allow_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate_per_minute=60, burst=3)
    assert [buckets.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", now=100.0) == pytest.approx(1.0)  # one token a second
    assert buckets.take("other", now=100.0) == 0.0  # each key its own bucket
    assert buckets.take("k", now=101.5) == 0.0  # refilled by the elapsed time
    assert buckets.take("k", now=101.5) == pytest.approx(0.5)
    assert [buckets.take("k", now=1000.0) for _ in range(4)][-1] > 0  # never more than burst
