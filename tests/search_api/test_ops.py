"""Operations in process: /metrics behind an admin key when configured, an audit that cannot be
written never fails a search, and the token buckets of the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from search_api.app import create_app
from search_api.deps import AppState
from search_api.keys import KeyStore
from search_api.limits import TokenBuckets
from search_api.live import IndexHolder
from search_api.settings import ApiSettings
from tests.search_api.conftest import Clock, auth


def app_client(settings: ApiSettings, holder: IndexHolder, keys_dir: Path,
               clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, AppState(holder, KeyStore(keys_dir), clock))
    with TestClient(app) as client:
        yield client


@pytest.fixture()
def guarded(access_index: tuple[Path, BuildReport], holder: IndexHolder,
            clock: Clock) -> Iterator[TestClient]:
    settings = ApiSettings(index=access_index[0], reload_seconds=0, metrics_require_admin=True)
    yield from app_client(settings, holder, access_index[0], clock)


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
    settings = ApiSettings(index=tmp_path, reload_seconds=0)
    for client in app_client(settings, holder, access_index[0], clock):
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
