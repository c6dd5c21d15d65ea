"""The owners' view over HTTP, in process: who the key is (/v1/me), the receipts of what its
partner owns with counts per day and filters, the admins' view over every owner, and nothing
of what the caller does not own (queries, keys, other owners' documents)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deployment import NEW_DOC, OWNED_BY, app_client, create_key
from tests.search_api.conftest import auth

PARTNERS = ("alpha", "beta", "gamma", "delta")
OWNS = {**OWNED_BY, "alpha": OWNED_BY["alpha"] | {NEW_DOC}}  # the second build added one
SECRET = "HERON swelling question only beta may know"


@pytest.fixture(scope="module")
def site(history: tuple[Path, Path]) -> Iterator[dict]:
    """The history's index (read only here), with searches by every partner and the admin."""
    index = history[1]
    keys = {p: create_key(index, p, f"{p} key name") for p in PARTNERS}
    keys["admin"] = create_key(index, None, "auditor")
    with app_client(index) as client:
        for who, query in (("alpha", "KESTREL electrolyte batch 11 anneal"), ("beta", SECRET),
                           ("gamma", "steering committee in Rotterdam"),
                           ("admin", "pilot line dew point")):
            assert client.post("/v1/search", json={"query": query, "top_k": 10},
                               headers=auth(keys[who])).status_code == 200
        yield {"client": client, "keys": keys}


def get(site: dict, who: str | None, path: str, **params: str):
    client: TestClient = site["client"]
    return client.get(path, params=params, headers=auth(site["keys"][who]) if who else {})


def test_me_says_who_the_key_is_and_how_many_documents_its_partner_owns(site: dict) -> None:
    for partner in PARTNERS:
        me = get(site, partner, "/v1/me").json()
        assert me == {"partner": partner, "admin": False, "owned_documents": len(OWNS[partner]),
                      "scopes": ["documents", "retrieve", "search"]}
    assert get(site, "admin", "/v1/me").json()["admin"] is True
    assert get(site, None, "/v1/me").status_code == 401


def test_owners_read_counts_per_day_and_filter_them(site: dict) -> None:
    body = get(site, "delta", "/v1/audit/owned").json()
    assert body["owner"] == "delta" and body["documents"] == 3
    receipts = body["receipts"]
    assert receipts and {r["doc_id"] for r in receipts} <= OWNS["delta"]
    assert {"alpha", "gamma", "admin"} <= {r["partner"] for r in receipts}
    today = datetime.now(UTC).date().isoformat()
    for r in receipts:
        assert r["owner"] == "delta" and sum(d["count"] for d in r["days"]) == r["count"]
        assert r["days"][-1]["day"] == today and r["first"] <= r["last"]
    gamma = get(site, "delta", "/v1/audit/owned", partner="gamma").json()["receipts"]
    assert gamma and {r["partner"] for r in gamma} == {"gamma"}
    doc = receipts[0]["doc_id"]
    assert {r["doc_id"] for r in get(site, "delta", "/v1/audit/owned", document=doc)
            .json()["receipts"]} == {doc}
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = get(site, "delta", "/v1/audit/owned", **{"from": later}).json()
    assert empty == {"owner": "delta", "documents": 3, "receipts": []}  # owns, none received
    for bad in ("yesterday", "0.5"):
        refused = get(site, "delta", "/v1/audit/owned", to=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["message"].startswith(f"to: '{bad}' is not an ISO date")


def test_an_owner_sees_only_its_own_documents_and_never_queries_or_keys(site: dict) -> None:
    for owner in PARTNERS:
        response = get(site, owner, "/v1/audit/owned")
        assert {r["doc_id"] for r in response.json()["receipts"]} <= OWNS[owner]
        for needle in (SECRET, "key name", "auditor", *(k.split("_")[1]
                                                         for k in site["keys"].values())):
            assert needle not in response.text
    beta = get(site, "beta", "/v1/audit/owned").json()["receipts"]
    assert {r["partner"] for r in beta} >= {"alpha", "beta"}  # the joint work went to both
    assert get(site, "gamma", "/v1/audit/owned").json() == {"owner": "gamma", "documents": 0,
                                                            "receipts": []}


def test_admins_read_every_owner_and_partners_may_not(site: dict) -> None:
    body = get(site, "admin", "/v1/admin/audit/owned").json()
    assert body["owners"] == [{"owner": o, "documents": len(OWNS[o])}
                              for o in ("alpha", "beta", "delta")]
    by_owner = {o: {r["doc_id"] for r in body["receipts"] if r["owner"] == o}
                for o in ("alpha", "beta", "delta")}
    for owner, docs in by_owner.items():  # each as the owner reads it on its own page
        assert docs and docs == {r["doc_id"] for r in get(site, owner, "/v1/audit/owned")
                                 .json()["receipts"]}
    beta = get(site, "admin", "/v1/admin/audit/owned", owner="beta").json()
    assert {r["owner"] for r in beta["receipts"]} == {"beta"} and len(beta["owners"]) == 3
    assert get(site, "admin", "/v1/admin/audit/owned", owner="nobody").json()["receipts"] == []
    assert get(site, "delta", "/v1/admin/audit/owned").status_code == 403
    refused = get(site, "admin", "/v1/audit/owned")
    assert refused.status_code == 403 and "/v1/admin/audit/owned" in refused.text
