"""HTTP contract: authentication, readable 4xx errors in one JSON shape, health and docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from search_api.identity.keys import KeyStore
from tests.search_api.conftest import auth


def error_of(response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "},
                                     {"Authorization": "Basic dXNlcjpwdw=="},
                                     {"Authorization": "Bearer pks_000000000000_nope"},
                                     {"Authorization": "Bearer garbage"}])
def test_missing_or_unknown_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/search", json={"query": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response)["code"] == "unauthorized"


def test_401_comes_before_validation(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": ""})
    assert response.status_code == 401


def test_revoked_key_is_refused_at_once(client: TestClient,
                                        access_index: tuple[Path, BuildReport]) -> None:
    store = KeyStore(access_index[0])
    record, key = store.create("temp", "alpha", False)
    assert client.post("/v1/search", json={"query": "x"}, headers=auth(key)).status_code == 200
    store.revoke(record.key_id)
    response = client.post("/v1/search", json={"query": "x"}, headers=auth(key))
    assert response.status_code == 401 and "revoked" in error_of(response)["message"]


@pytest.mark.parametrize("body, message", [
    ({"query": ""}, "query: must not be empty"),
    ({"query": "   \n"}, "query: must not be empty"),
    ({"query": "x" * 2001}, "query: is 2001 characters long; the limit is 2000"),
    ({"query": "x", "top_k": 0}, "top_k: must be at least 1 (got 0)"),
    ({"query": "x", "top_k": 101}, "top_k: must be at most 100 (got 101)"),
    ({"query": "x", "top_k": "many"}, "top_k:"),
    ({"top_k": 3}, "query: is required"),
    ({"query": "x", "topk": 3}, "topk: is not a known field"),
    ([1, 2], "the body must be a JSON object"),
])
def test_bad_requests_get_422_with_a_readable_message(
        client: TestClient, keys: dict[str, str], body: object, message: str) -> None:
    response = client.post("/v1/search", json=body, headers=auth(keys["alpha"]))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request" and message in error["message"]


def test_invalid_json_is_422(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post("/v1/search", content=b'{"query": ',
                           headers={**auth(keys["alpha"]), "Content-Type": "application/json"})
    assert response.status_code == 422 and "not valid JSON" in error_of(response)["message"]


def test_boundaries_are_accepted(client: TestClient, keys: dict[str, str]) -> None:
    for body in ({"query": "x" * 2000, "top_k": 1}, {"query": "battery", "top_k": 100}):
        assert client.post("/v1/search", json=body, headers=auth(keys["admin"])).status_code == 200


def test_partner_with_nothing_visible_gets_200_and_an_empty_list(
        client: TestClient, access_index: tuple[Path, BuildReport]) -> None:
    # A key for a partner that the index does not know sees nothing, and learns nothing.
    _, key = KeyStore(access_index[0]).create("ghost", "ghost", False)
    response = client.post("/v1/search", json={"query": "board acquisition"}, headers=auth(key))
    assert response.status_code == 200 and response.json() == {"results": []}


def test_health_docs_and_unknown_routes(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["generation"]  # which generation is served
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/search" in spec["paths"]
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
