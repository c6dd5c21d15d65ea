"""The whole HTTP API fuzzed from its own OpenAPI schema (schemathesis) against a real server on
loopback, with a partner key and with no key: no server error, every response as its schema
says, and never a passage or a document outside the caller's rights."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from search_api.http.app import openapi_schema
from tests.conftest import VISIBLE
from tests.deployment import OWNED_BY

pytestmark = pytest.mark.slow

PARTNER = "alpha"
# Bounded: a few examples per operation keep the whole module well under a minute of fuzzing.
FUZZ = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzzed(owned_server: dict[str, Any]) -> dict[str, Any]:
    return {"url": owned_server["url"], "key": owned_server["keys"][PARTNER]}


# The app's own schema, built without an index; test_the_served_schema_is_the_one_fuzzed pins
# that the server publishes exactly this. (schemathesis' lazy `from_fixture` loader does not run
# under pytest 9, so the schema is loaded when the module is collected.)
OPENAPI = openapi_schema()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_served_schema_is_the_one_fuzzed(fuzzed: dict[str, Any]) -> None:
    assert httpx.get(f"{fuzzed['url']}/openapi.json", timeout=30).json() == OPENAPI
    assert {"/v1/search", "/v1/documents/{doc_id}", "/v1/audit/owned", "/metrics"} <= set(
        OPENAPI["paths"])


def doc_ids_in(value: Any) -> set[str]:
    """Every doc_id anywhere in a JSON answer (passages, citations, nested results)."""
    if isinstance(value, dict):
        found = {value["doc_id"]} if isinstance(value.get("doc_id"), str) else set()
        return found.union(*(doc_ids_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(doc_ids_in(v) for v in value))
    return set()


def assert_within_rights(case: schemathesis.Case, response: Any, visible: set[str],
                         owned: set[str]) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        return
    path = case.operation.path
    if path.startswith("/v1/documents/"):
        assert unquote(str(case.path_parameters["doc_id"])) in visible
    if "json" not in response.headers.get("content-type", [""])[0]:
        return
    found = doc_ids_in(response.json())
    if path == "/v1/audit/owned":  # the owners' view names what the caller owns, nothing else
        assert found <= owned, found - owned
    else:
        assert found <= visible, found - visible


# Headers that frame the HTTP message itself: uvicorn parses them before the app sees anything
# and answers a malformed one with its own 400 (e.g. a generated `transfer-encoding: "U=+K=`),
# which is the HTTP server's contract, not the API's. Generated cases never send them.
FRAMING = frozenset({"transfer-encoding", "content-length", "connection", "host", "upgrade",
                     "te", "trailer", "expect"})


def without_framing(case: schemathesis.Case) -> schemathesis.Case:
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() not in FRAMING}
    return case


@schema.parametrize()
@FUZZ
def test_fuzz_with_a_partner_key(case: schemathesis.Case, fuzzed: dict[str, Any]) -> None:
    response = without_framing(case).call_and_validate(base_url=fuzzed["url"],
                                      headers={"Authorization": f"Bearer {fuzzed['key']}"})
    assert_within_rights(case, response, VISIBLE[PARTNER], OWNED_BY[PARTNER])


@schema.parametrize()
@FUZZ
def test_fuzz_without_a_key(case: schemathesis.Case, fuzzed: dict[str, Any]) -> None:
    response = without_framing(case).call_and_validate(base_url=fuzzed["url"])
    assert_within_rights(case, response, set(), set())
