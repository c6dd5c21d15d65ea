"""Operations in process: /metrics behind an admin key when configured, an audit that cannot be
written never fails a search, and the token buckets of the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from search_api.audit import AuditLog
from search_api.limits import TokenBuckets
from search_api.live import IndexHolder
from search_api.services import Services
from tests.deployment import app_client
from tests.search_api.conftest import Clock, auth


@pytest.fixture()
def guarded(access_index: tuple[Path, BuildReport], holder: IndexHolder,
            clock: Clock) -> Iterator[TestClient]:
    with app_client(access_index[0], holder=holder, today=clock,
                    metrics_require_admin=True) as client:
        yield client


def test_metrics_can_require_an_admin_key(guarded: TestClient, keys: dict[str, str]) -> None:
    assert guarded.get("/metrics").status_code == 401
    refused = guarded.get("/metrics", headers=auth(keys["alpha"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    answered = guarded.get("/metrics", headers=auth(keys["admin"]))
    assert answered.status_code == 200 and "pks_index_chunks" in answered.text
    assert guarded.get("/healthz").status_code == 200  # health stays open
    assert guarded.get("/readyz").status_code == 200


def test_a_search_is_answered_when_its_audit_cannot_be_written(
        tmp_path: Path, access_index: tuple[Path, BuildReport], holder: IndexHolder,
        clock: Clock, keys: dict[str, str]) -> None:
    (tmp_path / "audit").write_text("a file where the audit directory should be")

    def unwritable(services: Services) -> Services:
        return replace(services, audit=AuditLog(tmp_path, services.keys,
                                                observer=services.metrics))

    with app_client(access_index[0], holder=holder, today=clock, services=unwritable) as client:
        response = client.post("/v1/search", json={"query": "KESTREL electrolyte", "top_k": 3},
                               headers=auth(keys["alpha"]))
        assert response.status_code == 200 and response.json()["results"]
        assert "pks_audit_write_failures_total 1.0" in client.get("/metrics").text


def test_token_buckets_allow_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate_per_minute=60, burst=3)
    assert [buckets.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", now=100.0) == pytest.approx(1.0)  # one token a second
    assert buckets.take("other", now=100.0) == 0.0  # each key its own bucket
    assert buckets.take("k", now=101.5) == 0.0  # refilled by the elapsed time
    assert buckets.take("k", now=101.5) == pytest.approx(0.5)
    assert [buckets.take("k", now=1000.0) for _ in range(4)][-1] > 0  # never more than burst
