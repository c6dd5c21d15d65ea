"""Arbitrary Unicode and arbitrary JSON against a real server (hypothesis): no request is a server
error, text that is not Unicode is a 422 (MCP: a tool error) naming the problem, and a bad query
among concurrent good ones fails nobody else. test_fuzz.py fuzzes what the schema allows; this
fuzzes what it does not: lone surrogates, control characters, any JSON shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # a real server

RUNS = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
# Every code point, lone surrogates included (hypothesis leaves category Cs out by default).
ANY_CHAR = st.characters(exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=40)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    "query": TEXT | JSON, "top_k": st.integers(-5, 200) | JSON,
    "mode": st.sampled_from(["hybrid", "dense", "lexical"]) | JSON,
    "within": st.lists(TEXT, max_size=3) | JSON, "on_behalf_of": TEXT | JSON,
    "max_tokens": st.integers(0, 9000) | JSON})
BODIES = FIELDS | JSON
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(owned_server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with httpx.Client(base_url=str(owned_server["url"]), timeout=60) as client:
        yield {"client": client, "keys": owned_server["keys"]}


def encoded(body: Any) -> bytes:
    """JSON as a client sends it: ensure_ascii writes a lone surrogate as its \\u escape."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def post(server: dict[str, Any], path: str, body: bytes, who: str = "alpha",
         headers: dict[str, str] | None = None) -> httpx.Response:
    return server["client"].post(path, content=body, headers={
        "Authorization": f"Bearer {server['keys'][who]}", "Content-Type": "application/json",
        **(headers or {})})


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@given(body=BODIES, path=st.sampled_from(["/v1/search", "/v1/retrieve"]))
@RUNS
def test_any_json_body_is_answered_without_a_server_error(server: dict[str, Any], body: Any,
                                                          path: str) -> None:
    response = post(server, path, encoded(body))
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert {"results"} <= set(response.json()) or {"passages"} <= set(response.json())
    else:
        assert set(response.json()["error"]) == {"code", "message"}
    if isinstance(body, dict) and isinstance(body.get("query"), str) and \
            has_surrogate(body["query"]):
        assert response.status_code == 422
        assert "surrogate" in response.json()["error"]["message"]
        assert response.headers.get("connection") != "close"  # the connection is kept


@given(query=TEXT.filter(has_surrogate), mode=st.sampled_from(["hybrid", "dense", "lexical"]),
       path=st.sampled_from(["/v1/search", "/v1/retrieve"]))
@RUNS
def test_a_query_that_is_not_text_is_a_422_in_every_mode(server: dict[str, Any], query: str,
                                                         mode: str, path: str) -> None:
    body = {"query": "cell " + query, **({"mode": mode} if path == "/v1/search" else {})}
    response = post(server, path, encoded(body))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith("query: character")


@given(arguments=st.dictionaries(st.sampled_from(["query", "doc_id", "top_k", "max_tokens",
                                                  "max_chars", "extra"]), JSON, max_size=4)
       | JSON,
       tool=st.sampled_from(["search_partner_knowledge", "fetch_document"]))
@RUNS
def test_any_mcp_tool_call_is_answered_without_a_server_error(
        server: dict[str, Any], arguments: Any, tool: str) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}
    response = post(server, "/mcp", encoded(call), headers=MCP_HEADERS)
    assert response.status_code < 500, response.text
    if response.status_code == 200 and isinstance(arguments, dict) and any(
            isinstance(arguments.get(f), str) and has_surrogate(arguments[f])
            for f in ("query", "doc_id")):
        result = response.json().get("result") or {}
        assert result.get("isError") or "error" in response.json()


@given(doc_id=TEXT.filter(lambda t: t.strip("/")), filters=st.dictionaries(
    st.sampled_from(["partner", "document", "from", "to", "limit"]), TEXT, max_size=3))
@RUNS
def test_any_text_in_paths_and_filters_is_answered_without_a_server_error(
        server: dict[str, Any], doc_id: str, filters: dict[str, str]) -> None:
    client, keys = server["client"], server["keys"]
    path = quote(doc_id.encode("utf-8", "surrogatepass"), safe="")
    for who in ("alpha", "admin"):
        auth = {"Authorization": f"Bearer {keys[who]}"}
        assert client.get(f"/v1/documents/{path}", headers=auth).status_code in (404, 200)
        params = {k: v.encode("utf-8", "surrogatepass") for k, v in filters.items()}
        audit = client.get("/v1/admin/audit", params=params, headers=auth)
        assert audit.status_code in ((200, 422) if who == "admin" else (403,)), audit.text


def test_a_bad_query_among_concurrent_ones_fails_nobody_else(server: dict[str, Any]) -> None:
    """The probe of the issue: 30 ordinary admin queries while a partner sends 32 queries with a
    lone surrogate, all at once; every ordinary one is answered."""
    good = [encoded({"query": f"pilot line cell formation question {i}", "top_k": 3})
            for i in range(30)]
    bad = [encoded({"query": f"\ud800 cell {i}", "mode": ("hybrid", "dense")[i % 2]})
           for i in range(32)]
    work = [("admin", b) for b in good] + [("alpha", b) for b in bad]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda job: post(server, "/v1/search", job[1], job[0]), work))
    assert [a.status_code for a in answers[:30]] == [200] * 30
    assert all(a.json()["results"] for a in answers[:30])
    assert [a.status_code for a in answers[30:]] == [422] * 32
