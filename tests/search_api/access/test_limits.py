"""Rate limits charged to whoever a request turns out to be: the signed-in SSO user or the key,
whatever else the request presents; refused sign-ins charged to the client's address, never to
the user they name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from search_api.retrieval.live import IndexHolder
from tests.deployment import app_client
from tests.search_api.conftest import Clock, auth

PROXY, STRANGER, OTHER = "10.0.0.5", "10.9.9.9", "10.9.9.10"
ALICE = {"X-Forwarded-User": "alice@alpha.example"}
QUERY = {"query": "KESTREL electrolyte", "top_k": 1, "mode": "lexical"}


@pytest.fixture()
def proxied(access_index: tuple[Path, BuildReport], holder: IndexHolder, clock: Clock,
            tmp_path: Path) -> Iterator[TestClient]:
    """The app behind an SSO proxy at PROXY: 3 requests at once per caller, 4 refused
    sign-ins at once per address."""
    users = tmp_path / "users.yaml"
    users.write_text("partners:\n  alpha: [alice@alpha.example]\n  beta: [bob@beta.example]\n")
    with app_client(access_index[0], holder=holder, today=clock, address=PROXY,
                    trust_user_header=True, trusted_proxies=[PROXY], users_file=users,
                    rate_limit_per_minute=1, rate_limit_burst=3,
                    auth_failures_per_minute=4) as client:
        yield client


def from_address(client: TestClient, address: str) -> TestClient:
    """Another client of the same running app (same services, same budgets)."""
    return TestClient(client.app, client=(address, 50000))


def test_a_signed_in_user_is_limited_as_the_user_whatever_key_it_sends(
        proxied: TestClient) -> None:
    statuses = [proxied.post("/v1/search", json=QUERY, headers={
        **ALICE, "Authorization": f"Bearer junk-{i}"}).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = proxied.post("/v1/search", json=QUERY, headers=ALICE)
    assert limited.status_code == 429 and limited.headers["Retry-After"].isdigit()
    assert "by this user" in limited.json()["error"]["message"]
    bob = proxied.post("/v1/search", json=QUERY, headers={"X-Forwarded-User": "bob@beta.example"})
    assert bob.status_code == 200  # each user its own budget


def test_refused_sign_ins_are_limited_per_address_and_never_charge_the_user_they_name(
        proxied: TestClient, keys: dict[str, str]) -> None:
    stranger = from_address(proxied, STRANGER)  # not the proxy: its user header is ignored
    statuses = [stranger.post("/v1/search", json=QUERY, headers=ALICE).status_code
                for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert "from this address" in stranger.get("/v1/audit/owned").json()["error"]["message"]
    assert stranger.post("/v1/search", json=QUERY, headers=auth(keys["beta"])).status_code == 200
    assert from_address(proxied, OTHER).post("/v1/search", json=QUERY).status_code == 401
    for _ in range(3):  # alice's budget is whole: nobody else's refusals touched it
        assert proxied.post("/v1/search", json=QUERY, headers=ALICE).status_code == 200
    unknown = proxied.post("/v1/search", json=QUERY,
                           headers={"X-Forwarded-User": "mallory@else.example"})
    assert unknown.status_code == 401 and "not in the users table" in unknown.text


def test_a_key_is_charged_once_per_request_on_every_surface(
        proxied: TestClient, keys: dict[str, str]) -> None:
    alpha = auth(keys["alpha"])
    assert proxied.post("/v1/search", json=QUERY, headers=alpha).status_code == 200
    assert proxied.get("/v1/documents/alpha/electrolyte.txt", headers=alpha).status_code == 200
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "search_partner_knowledge", "arguments": {"query": "KESTREL"}}}
    mcp = {**alpha, "Accept": "application/json, text/event-stream"}
    assert proxied.post("/mcp", json=call, headers=mcp).status_code == 200
    limited = proxied.post("/mcp", json=call, headers=mcp)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    other = proxied.post("/v1/retrieve", json={"query": "KESTREL"}, headers=auth(keys["delta"]))
    assert other.status_code == 200  # another key, its own budget


def test_an_expensive_read_costs_what_the_searches_it_is_worth_would(
        access_index: tuple[Path, BuildReport], holder: IndexHolder, clock: Clock,
        keys: dict[str, str]) -> None:
    """The admin audit costs one request of the key's budget per 100 records it may return."""
    admin = auth(keys["admin"])
    with app_client(access_index[0], holder=holder, today=clock, rate_limit_per_minute=1,
                    rate_limit_burst=12) as client:
        assert client.get("/v1/admin/audit", params={"limit": 1000},
                          headers=admin).status_code == 200  # 10 of 12
        refused = client.get("/v1/admin/audit", params={"limit": 300}, headers=admin)
        assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()
        assert client.get("/v1/admin/audit", params={"limit": 100},
                          headers=admin).status_code == 200  # 1: it still has 2
