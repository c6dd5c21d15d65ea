"""`within` narrows the caller's allowed set to matching paths and can never widen it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from wcmatch import glob

from indexer.store.names import GLOB_FLAGS
from tests.conftest import SHARED, VISIBLE
from tests.search_api.conftest import auth

QUERIES = ["battery electrolyte conductivity", "sensor drift calibration", "board acquisition",
           "recycling lithium cobalt", "steering committee", "pilot line dew point"]


def results(client: TestClient, key: str, query: str, within: list[str] | None = None,
            top_k: int = 100) -> list[dict]:
    body: dict[str, object] = {"query": query, "top_k": top_k}
    if within is not None:
        body["within"] = within
    response = client.post("/v1/search", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize("who", ["alpha", "beta", "gamma", "admin"])
@pytest.mark.parametrize("within", [["alpha/**"], ["shared/**"], ["beta/*", "joint/**"],
                                    ["internal/**", "drafts/**"], ["**/*.pdf"], ["**"],
                                    ["*/glossary.jsonl"], ["nothing/here/*"]])
def test_within_equals_the_visible_chunks_whose_path_matches(
        client: TestClient, keys: dict[str, str], who: str, within: list[str]) -> None:
    # top_k above the corpus size: the answer is every visible chunk, so the sets must be equal.
    everything = results(client, keys[who], "programme", top_k=100)
    narrowed = results(client, keys[who], "programme", within, top_k=100)
    expected = {r["chunk_id"] for r in everything
                if glob.globmatch(r["path"], within, flags=GLOB_FLAGS)}
    assert {r["chunk_id"] for r in narrowed} == expected
    if who != "admin":
        assert {r["doc_id"] for r in narrowed} <= VISIBLE[who]


@pytest.mark.parametrize("query", QUERIES)
def test_a_glob_outside_the_rights_returns_nothing(client: TestClient, keys: dict[str, str],
                                                   query: str) -> None:
    for who, foreign in [("alpha", ["beta/**", "internal/**", "drafts/**", "gamma/**"]),
                         ("beta", ["alpha/**", "internal/**"]), ("gamma", ["gamma/**"]),
                         ("delta", ["alpha/**", "beta/**", "joint/**"])]:
        assert results(client, keys[who], query, foreign) == []


def test_within_keeps_ranking_and_top_k(client: TestClient, keys: dict[str, str]) -> None:
    hits = results(client, keys["beta"], "Fibre Bragg grating strain", ["shared/**"], top_k=2)
    assert len(hits) == 2 and {h["doc_id"] for h in hits} <= SHARED
    assert hits[0]["doc_id"] == "gloss-fbg" and hits[0]["score"] >= hits[1]["score"]


@pytest.mark.parametrize("within, message", [
    ([], "give 1 to 20 globs"),
    ([""], "glob 1 ('') is empty"),
    (["shared/**", "/etc/*"], "glob 2 ('/etc/*') must be relative to the corpus root"),
    (["../outside/*"], "must be relative to the corpus root"),
    (["shared/**/../x"], "must be relative to the corpus root"),
    (["x" * 301], "the limit is 300"),
    (["a/*"] * 21, "give 1 to 20 globs (got 21)"),
    (["a\x00b"], "control character"),
    ("shared/**", "within:"),
])
def test_bad_globs_are_422_with_a_readable_message(client: TestClient, keys: dict[str, str],
                                                    within: object, message: str) -> None:
    response = client.post("/v1/search", json={"query": "x", "within": within},
                           headers=auth(keys["alpha"]))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and message in error["message"]


def test_admins_see_who_may_see_each_result_and_partners_do_not(
        client: TestClient, keys: dict[str, str]) -> None:
    admin = results(client, keys["admin"], "HERON swelling pouch cells programme", top_k=100)
    rights = {r["doc_id"]: r["visible_to"] for r in admin}
    assert rights["joint/integration.md"] == ["alpha", "beta"]
    assert rights["shared/overview.md"] == ["alpha", "beta", "delta", "gamma"]
    assert rights["gamma/recycling.txt"] == []  # the grant expired in 2020
    assert rights["internal/board.md"] == []  # no rule: admins only
    for who in ("alpha", "beta", "gamma", "delta"):
        response = client.post("/v1/search", json={"query": "HERON swelling", "top_k": 100},
                               headers=auth(keys[who]))
        assert response.json()["results"]
        assert "visible_to" not in response.text
