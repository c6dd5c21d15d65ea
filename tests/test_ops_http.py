"""Operations over real HTTP: the audit (admin view, owners' view, CLI), metrics, health,
readiness, the body limit and the per-key rate limit, against `serve` on loopback."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests.conftest import VISIBLE
from tests.deployment import OWNED_BY, app_client, create_key, make_owned_corpus, run, serve
from tests.factory import write

PARTNERS = ("alpha", "beta", "gamma", "delta")
SHARED_QUERY = "steering committee meetings in Rotterdam every quarter"
JOINT_QUERY = "HERON prototype swelling of pouch cells during fast charging"
SCRAPE_TOKEN = "the-prometheus-job-scrape-token"
pytestmark = pytest.mark.slow  # a real server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
               embedder: Embedder) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("ops")
    corpus, index = make_owned_corpus(base / "corpus"), base / "index"
    build(corpus, index, settings, embedder)
    keys = {p: create_key(index, p, f"{p} secret bot name") for p in PARTNERS}
    keys["admin"] = create_key(index, None, "host auditor")
    keys["scraper"] = SCRAPE_TOKEN
    with serve(index, {"PKS_RELOAD_SECONDS": "0.5", "PKS_METRICS_TOKEN": SCRAPE_TOKEN}) as url:
        yield {"url": url, "keys": keys, "index": index, "corpus": corpus}


def get(d: dict, path: str, who: str | None = None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {d['keys'][who]}"} if who else {}
    return httpx.get(f"{d['url']}{path}", headers=headers, params=params, timeout=30)


def search(d: dict, who: str, query: str, top_k: int = 10) -> list[dict]:
    response = httpx.post(f"{d['url']}/v1/search", json={"query": query, "top_k": top_k},
                          headers={"Authorization": f"Bearer {d['keys'][who]}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_every_search_is_recorded_with_who_what_and_the_owners(deployment: dict) -> None:
    results = search(deployment, "alpha", JOINT_QUERY)
    response = get(deployment, "/v1/admin/audit", "admin", partner="alpha", limit=1)
    assert response.status_code == 200
    [event] = response.json()["events"]
    assert event["surface"] == "search" and event["status"] == 200
    assert event["query"] == JOINT_QUERY
    assert event["partner"] == "alpha" and event["admin"] is False
    assert event["key_id"] == deployment["keys"]["alpha"].split("_")[1]
    assert event["key_name"] == "alpha secret bot name"
    returned = list(dict.fromkeys(r["doc_id"] for r in results))
    assert [d["doc_id"] for d in event["documents"]] == returned
    owners = {d["doc_id"]: d["owner"] for d in event["documents"]}
    assert owners["joint/integration.md"] == "beta"
    assert all(owners[d] == "delta" for d in returned if d in OWNED_BY["delta"])
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")).tzinfo is not None


def test_admin_audit_filters_and_refuses_other_keys(deployment: dict) -> None:
    before = datetime.now(UTC)
    search(deployment, "beta", "fibre Bragg grating strain sensor drift")
    search(deployment, "gamma", SHARED_QUERY)
    events = get(deployment, "/v1/admin/audit", "admin", **{"from": before.isoformat()}).json()
    times = [e["time"] for e in events["events"]]
    assert times == sorted(times, reverse=True) and len(times) >= 2  # newest first
    assert [e["partner"] for e in events["events"][:2]] == ["gamma", "beta"]
    beta = get(deployment, "/v1/admin/audit", "admin", partner="beta").json()["events"]
    assert beta and {e["partner"] for e in beta} == {"beta"}
    doc = get(deployment, "/v1/admin/audit", "admin", document="beta/sensors.md").json()
    assert doc["events"] and all(
        "beta/sensors.md" in {x["doc_id"] for x in e["documents"]} for e in doc["events"])
    past = (before - timedelta(days=365)).isoformat()
    assert get(deployment, "/v1/admin/audit", "admin", to=past).json() == {"events": []}
    for who, status in (("alpha", 403), ("delta", 403), (None, 401)):
        refused = get(deployment, "/v1/admin/audit", who)
        assert refused.status_code == status
        assert set(refused.json()["error"]) == {"code", "message"}
    assert get(deployment, "/v1/admin/audit", "admin", limit=0).status_code == 422


def test_owners_read_who_received_their_documents_without_queries_or_keys(
        deployment: dict) -> None:
    secret = "KESTREL electrolyte question that only alpha may know about"
    search(deployment, "alpha", secret)
    search(deployment, "alpha", JOINT_QUERY)
    search(deployment, "beta", SHARED_QUERY)
    search(deployment, "gamma", SHARED_QUERY)
    search(deployment, "admin", "board acquisition ALBATROSS")
    reports = {}
    for owner in PARTNERS:
        response = get(deployment, "/v1/audit/owned", owner)
        assert response.status_code == 200
        text = response.text
        for needle in (secret, JOINT_QUERY, SHARED_QUERY, "secret bot name", "host auditor",
                       *(k.split("_")[1] for k in deployment["keys"].values() if "_" in k)):
            assert needle not in text  # never a query, a key id or a key name
        body = response.json()
        assert body["owner"] == owner
        reports[owner] = body["receipts"]
        assert {r["doc_id"] for r in body["receipts"]} <= OWNED_BY[owner]
    assert reports["gamma"] == []  # owns nothing
    joint = [r for r in reports["beta"] if r["doc_id"] == "joint/integration.md"]
    assert {r["partner"] for r in joint} >= {"alpha"}
    shared = {r["partner"] for r in reports["delta"]}
    assert {"beta", "gamma"} <= shared  # partners that received delta's shared documents
    for receipt in reports["delta"] + reports["beta"]:
        assert receipt["kind"] == "passages" and receipt["count"] >= 1
        assert receipt["first"] <= receipt["last"]
    counted = next(r for r in reports["beta"] if r["partner"] == "alpha")
    search(deployment, "alpha", JOINT_QUERY)
    again = next(r for r in get(deployment, "/v1/audit/owned", "beta").json()["receipts"]
                 if r["partner"] == "alpha" and r["doc_id"] == counted["doc_id"])
    assert again["count"] == counted["count"] + 1 and again["last"] >= counted["last"]
    assert get(deployment, "/v1/audit/owned", "admin").status_code == 403
    assert get(deployment, "/v1/audit/owned").status_code == 401


def test_downloads_are_recorded_and_shown_to_the_owner_as_downloads(deployment: dict) -> None:
    doc = "alpha/electrolyte.txt"
    assert get(deployment, f"/v1/documents/{doc}", "alpha").status_code == 200
    assert get(deployment, f"/v1/documents/{doc}", "beta").status_code == 404  # not beta's
    events = get(deployment, "/v1/admin/audit", "admin", limit=2).json()["events"]
    refused, fetched = events
    assert (fetched["surface"], fetched["partner"], fetched["status"]) == ("document", "alpha", 200)
    assert fetched["documents"] == [{"doc_id": doc, "owner": "alpha", "passages": 1,
                                     "pages": None}]  # a download cites no page
    assert (refused["surface"], refused["partner"], refused["status"]) == ("document", "beta", 404)
    assert refused["documents"] == [] and refused["query"] == doc
    receipts = get(deployment, "/v1/audit/owned", "alpha").json()["receipts"]
    downloads = [r for r in receipts if r["kind"] == "download"]
    assert [(r["doc_id"], r["partner"], r["count"]) for r in downloads] == [(doc, "alpha", 1)]
    metrics = get(deployment, "/metrics", "admin").text
    assert 'endpoint="/v1/documents/{doc_id}",method="GET",status="404"' in metrics
    assert re.search(r'pks_searches_total\{mode="default",surface="document"\} 2', metrics)


def test_cli_reads_the_same_audit_with_filters(deployment: dict) -> None:
    query = "pilot line dew point of the dry room"
    search(deployment, "alpha", query)
    index = str(deployment["index"])
    lines = run("search_api", "audit", "--index", index, "--partner", "alpha", "--json",
                "--limit", "1")
    assert lines.returncode == 0, lines.stderr
    [event] = [json.loads(line) for line in lines.stdout.splitlines()]
    assert event["query"] == query and event["partner"] == "alpha"
    text = run("search_api", "audit", "--index", index, "--document", "alpha/pilot-line.pdf",
               "--since", (datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert text.returncode == 0 and "alpha/pilot-line.pdf (owner alpha)" in text.stdout
    assert query in text.stdout
    future = run("search_api", "audit", "--index", index, "--since", "2999-01-01", "--json")
    assert future.returncode == 0 and future.stdout == ""
    bad = run("search_api", "audit", "--index", index, "--since", "yesterday")
    assert bad.returncode == 2 and "not an ISO date" in bad.stderr


def test_audit_files_are_private_and_survive_a_reindex(deployment: dict) -> None:
    audit_dir = deployment["index"] / "audit"
    before = get(deployment, "/v1/admin/audit", "admin", limit=10_000).json()["events"]
    write(deployment["corpus"] / "alpha/new.txt", "KESTREL batch 11 reached 16.1 mS/cm.")
    rebuilt = run("indexer", "build", "--corpus", str(deployment["corpus"]),
                  "--index", str(deployment["index"]))
    assert rebuilt.returncode == 0, rebuilt.stderr
    new_generation = Generation.open_live(deployment["index"]).name
    for _ in range(100):
        if search(deployment, "alpha", "KESTREL batch 11", top_k=1)[0]["doc_id"] == \
                "alpha/new.txt":
            break
        time.sleep(0.2)
    else:
        pytest.fail("the new generation never went live")
    after = get(deployment, "/v1/admin/audit", "admin", limit=10_000).json()["events"]
    assert after[-len(before):] == before  # nothing lost, nothing rewritten
    assert after[0]["generation"] == new_generation != before[0]["generation"]
    for path in audit_dir.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE(os.stat(audit_dir).st_mode) == 0o700


def test_metrics_for_the_scraper_health_and_readiness_without_a_key(deployment: dict) -> None:
    search(deployment, "alpha", "secret-metrics-probe quarterly committee")
    assert get(deployment, "/v1/no-such-thing-42", "alpha").status_code == 404
    assert get(deployment, "/healthz").json()["status"] == "ok"
    ready = get(deployment, "/readyz")
    generation = Generation.open_live(deployment["index"])
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "generation": generation.name}
    assert get(deployment, "/metrics").status_code == 401  # never public
    assert get(deployment, "/metrics", "alpha").status_code == 403
    response = get(deployment, "/metrics", "scraper")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/plain")
    text = response.text
    assert re.search(r'pks_http_requests_total\{endpoint="/v1/search",method="POST",'
                     r'status="200"\} [1-9]', text)
    assert 'pks_http_request_duration_seconds_bucket{endpoint="/v1/search"' in text
    assert 'endpoint="unmatched",method="GET",status="404"' in text
    assert re.search(r'pks_searches_total\{mode="hybrid",surface="search"\} [1-9]', text)
    documents, chunks = generation.counts()
    assert re.search(rf'pks_index_info{{generation="{generation.name}",model="[^"/]+"}} 1.0',
                     text)  # the model's name, never a path on the server
    assert f"pks_index_documents {float(documents)}" in text
    assert f"pks_index_chunks {float(chunks)}" in text
    assert "pks_audit_write_failures_total 0.0" in text
    for needle in ("secret-metrics-probe", "no-such-thing", *PARTNERS,
                   *(k.split("_")[1] for k in deployment["keys"].values() if "_" in k)):
        assert needle not in text  # totals only: no partner, query, path or key


def test_bodies_over_the_limit_are_refused_unread(deployment: dict) -> None:
    url, key = f"{deployment['url']}/v1/search", deployment["keys"]["alpha"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    big = json.dumps({"query": "x" * 70_000, "top_k": 1}).encode()
    declared = httpx.post(url, content=big, headers=headers, timeout=30)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "body_too_large"

    def chunked(data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), 4096):
            yield data[start:start + 4096]

    streamed = httpx.post(url, content=chunked(big), headers=headers, timeout=30)
    assert streamed.status_code == 413
    small = json.dumps({"query": "KESTREL electrolyte", "top_k": 2}).encode()
    fine = httpx.post(url, content=chunked(small), headers=headers, timeout=30)
    assert fine.status_code == 200 and fine.json()["results"]
    assert {r["doc_id"] for r in fine.json()["results"]} <= VISIBLE["alpha"]


def test_rate_limit_per_key_answers_429_with_retry_after(deployment: dict) -> None:
    """In process: the limiter is the app's own middleware, no second server needed."""
    with app_client(deployment["index"], rate_limit_per_minute=6, rate_limit_burst=3) as client:
        def ask(who: str) -> httpx.Response:
            return client.post("/v1/search", json={"query": "sensors", "top_k": 1},
                               headers={"Authorization": f"Bearer {deployment['keys'][who]}"})

        statuses = [ask("beta").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = ask("beta")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        assert limited.json()["error"]["code"] == "rate_limited"
        assert ask("delta").status_code == 200  # another key has its own budget
        assert client.get("/healthz").status_code == 200  # no key: not limited here
