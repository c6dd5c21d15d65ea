"""Scopes on every route: each route of the OpenAPI schema, MCP and the pages, called with a
key of each single scope (partner and admin), gets past authorization exactly where the table
(search_api/http/routes/__init__.py, ROUTE_SCOPES; docs/ACCESS.md, "Scopes") says.

Against the real server (`owned_server`, uvicorn on loopback): GET /mcp opens an event stream,
which only a real connection can open and then close.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from search_api.http.app import openapi_schema
from search_api.http.routes import PUBLIC, ROUTE_SCOPES, passes
from search_api.identity.keys import KeyStore
from search_api.identity.principal import DEFAULT_SCOPES, SCOPES

ROOT = Path(__file__).resolve().parents[3]
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}
CALLS: dict[str, tuple[str, dict[str, object]]] = {  # route -> (URL path, request arguments)
    "POST /v1/search": ("/v1/search", {"json": {"query": "KESTREL", "top_k": 1}}),
    "POST /v1/retrieve": ("/v1/retrieve", {"json": {"query": "KESTREL", "top_k": 1}}),
    "GET /v1/documents/{doc_id}": ("/v1/documents/shared/overview.md", {}),
    "POST /mcp": ("/mcp", {"headers": MCP_ACCEPT, "json": {"jsonrpc": "2.0", "id": 1,
                                                            "method": "tools/list"}}),
    "DELETE /mcp": ("/mcp", {"headers": MCP_ACCEPT}),
    "GET /v1/admin/audit": ("/v1/admin/audit", {"params": {"limit": 1}}),
    "POST /v1/admin/builds/rollback": ("/v1/admin/builds/rollback",
                                       {"json": {"to": "no-such-generation"}}),
    "GET /static/{name}": ("/static/page.js", {}),
    "GET /docs/assets/{name}": ("/docs/assets/favicon.png", {}),
}
KINDS = [*((scope,) for scope in SCOPES), tuple(sorted(DEFAULT_SCOPES))]


def routes() -> set[str]:
    """Every route the app serves: the OpenAPI schema's, MCP's, and the pages'."""
    schema = {f"{method.upper()} {path}" for path, item in openapi_schema()["paths"].items()
              for method in item}
    return schema | {"GET /mcp", "POST /mcp", "DELETE /mcp"} | PUBLIC


def status(url: str, route: str, key: str | None) -> int:
    method, template = route.split(" ", 1)
    path, arguments = CALLS.get(route, (template, {}))
    headers = {**arguments.pop("headers", {}), **({"Authorization": f"Bearer {key}"}  # type: ignore[dict-item]
                                                  if key else {})}
    with httpx.Client(base_url=url, timeout=60) as client:
        if route == "GET /mcp":  # an event stream: its status, then it is closed
            with client.stream("GET", path, headers={**headers, "Accept": "text/event-stream"}
                               ) as response:
                return response.status_code
        return client.request(method, path, headers=headers, **arguments).status_code  # type: ignore[arg-type]


def test_the_table_names_every_route_and_the_docs_state_it() -> None:
    assert routes() == set(ROUTE_SCOPES) | PUBLIC
    assert not set(ROUTE_SCOPES) & PUBLIC
    text = (ROOT / "docs" / "ACCESS.md").read_text()
    for route in ROUTE_SCOPES:
        assert re.search(rf"\| `{re.escape(route)}` \|", text), route


@pytest.fixture(scope="module")
def scoped_keys(owned_server: dict) -> dict[tuple[bool, tuple[str, ...]], str]:
    """(admin, scopes) -> a key of the served index with exactly those scopes."""
    store = KeyStore(owned_server["index"])
    return {(admin, kind): store.create(f"scopes {admin} {kind}", None if admin else "alpha",
                                        admin, frozenset(kind))[1]
            for admin in (False, True) for kind in KINDS}


@pytest.mark.slow  # a real server
def test_only_the_tables_pairs_get_past_authorization(
        owned_server: dict, scoped_keys: dict[tuple[bool, tuple[str, ...]], str]) -> None:
    url = owned_server["url"]
    wrong: list[tuple[str, str, str, int]] = []
    for route in sorted(routes()):
        anonymous = status(url, route, None)
        if route in PUBLIC:
            assert anonymous == 200, route
            continue
        assert anonymous == 401, route
        for (admin, kind), key in scoped_keys.items():
            need = ROUTE_SCOPES[route][1 if admin else 0]
            got = status(url, route, key)
            if (got not in (401, 403)) != passes(need, frozenset(kind)):
                wrong.append((route, "admin" if admin else "partner", "+".join(kind), got))
    assert wrong == []


@pytest.mark.slow  # a real server
def test_a_retrieve_only_admin_key_is_refused_every_operator_view(
        owned_server: dict, scoped_keys: dict[tuple[bool, tuple[str, ...]], str]) -> None:
    """The issue's case: the key a chat bot over every document gets."""
    bot = scoped_keys[(True, ("retrieve",))]
    call: Callable[[str], int] = lambda route: status(owned_server["url"], route, bot)  # noqa: E731
    for route in ("GET /v1/admin/audit", "GET /v1/admin/audit/owned", "GET /v1/admin/builds",
                  "POST /v1/admin/builds/rollback", "GET /metrics"):
        assert call(route) == 403, route
    assert call("POST /v1/retrieve") == 200
    partner_bot = scoped_keys[(False, ("retrieve",))]
    assert status(owned_server["url"], "GET /v1/audit/owned", partner_bot) == 403
