"""The MCP tools through the SDK's own client, over both transports: stdio (spawning the real
`python -m search_api mcp`) and streamable HTTP (/mcp on a real uvicorn server on loopback).
Also /v1/retrieve over real HTTP, as the README's curl sends it."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from indexer.build import BuildReport
from search_api.audit.files import AuditLog
from search_api.identity.keys import KeyStore
from tests.conftest import TEXTS, VISIBLE
from tests.deployment import ENV, ROOT, cli, serve

pytestmark = pytest.mark.slow

SETTINGS = {"PKS_RELOAD_SECONDS": "0"}
QUERY = "KESTREL electrolyte OSPREY fibre sensors HERON swelling PELICAN recycling ALBATROSS"
# A phrase only in each partner's own documents: must never reach anyone else.
SECRETS = {"alpha/electrolyte.txt": "glovebox protocol", "beta/sensors.md": "salt spray chamber",
           "gamma/recycling.txt": "hydrometallurgical", "internal/board.md": "ALBATROSS",
           "drafts/plan.txt": "CORMORANT"}


@pytest.fixture(scope="module")
def served(access_index: tuple[Path, BuildReport]) -> Iterator[dict[str, Any]]:
    index = access_index[0]
    store = KeyStore(index)
    keys = {p: store.create(f"mcp {p}", p, False)[1] for p in ("alpha", "beta")}
    keys["narrow"] = store.create("retrieve only", "alpha", False, frozenset({"retrieve"}))[1]
    with serve(index, SETTINGS) as url:
        yield {"url": url, "keys": keys, "index": index, "store": store}


@asynccontextmanager
async def stdio_session(index: Path, key: str | None) -> AsyncIterator[ClientSession]:
    env = {**ENV, **SETTINGS, **({"PKS_API_KEY": key} if key is not None else {})}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "search_api", "mcp", "--index", str(index)],
        env=env, cwd=str(ROOT))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        yield session


def tool_checks(session_for: Any, keys: dict[str, str], only_alpha: bool = False) -> None:
    """What must hold on either transport, for the keys of the `served` fixture."""

    async def run() -> None:
        async with session_for(keys["alpha"]) as alpha:
            listed = {t.name for t in (await alpha.list_tools()).tools}
            assert listed == {"search_partner_knowledge", "fetch_document"}
            result = await alpha.call_tool("search_partner_knowledge",
                                           {"query": QUERY, "top_k": 100, "max_tokens": 8000})
            assert not result.is_error
            body = result.structured_content
            docs = {p["doc_id"] for p in body["passages"]}
            assert docs == VISIBLE["alpha"]  # everything alpha may see, nothing else
            text = result.content[0].text
            assert text == body["context"] and text.startswith("[1] ")
            for doc, phrase in SECRETS.items():
                assert (phrase in text) == (doc in VISIBLE["alpha"]), doc
            small = await alpha.call_tool("search_partner_knowledge",
                                          {"query": "KESTREL", "max_tokens": 50})
            assert small.structured_content["tokens"] <= 50
            # The pilot-line PDF's one chunk runs from page 1 into page 2, where these words
            # are: the same page and range as /v1/search and /v1/retrieve give.
            cited = await alpha.call_tool("search_partner_knowledge", {
                "query": "first cycle efficiency of the KESTREL cells", "top_k": 1})
            [passage] = cited.structured_content["passages"]
            assert (passage["page"], passage["pages"]) == (2, [1, 2])
            assert cited.content[0].text.startswith("[1] Pilot line report, p. 2 (pp. 1-2)")
            document = await alpha.call_tool("fetch_document",
                                              {"doc_id": "alpha/electrolyte.txt"})
            assert not document.is_error
            assert document.structured_content["pages"][0]["text"].split() == \
                TEXTS["alpha/electrolyte.txt"].split()
            hidden = await alpha.call_tool("fetch_document", {"doc_id": "beta/sensors.md"})
            missing = await alpha.call_tool("fetch_document", {"doc_id": "nope/none.md"})
            assert hidden.is_error and missing.is_error
            assert "salt spray" not in json.dumps(hidden.model_dump(mode="json"))
            assert hidden.content[0].text == missing.content[0].text.replace("nope/none.md",
                                                                             "beta/sensors.md")
        if only_alpha:
            return
        async with session_for(keys["narrow"]) as narrow:  # a retrieve-only key
            ok = await narrow.call_tool("search_partner_knowledge", {"query": "KESTREL"})
            assert not ok.is_error and ok.structured_content["passages"]
            denied = await narrow.call_tool("fetch_document", {"doc_id": "alpha/electrolyte.txt"})
            assert denied.is_error and "scope 'documents'" in denied.content[0].text
        async with session_for(keys["beta"]) as beta:
            result = await beta.call_tool("search_partner_knowledge",
                                          {"query": QUERY, "top_k": 100, "max_tokens": 8000})
            assert {p["doc_id"] for p in result.structured_content["passages"]} == VISIBLE["beta"]
            assert "glovebox protocol" not in result.content[0].text

    anyio.run(run)


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def refused(session_for: Any, key: str | None) -> bool:
    """Whether the SDK client fails with an MCP error when the server refuses the key."""

    async def run() -> None:
        async with session_for(key) as session:
            await session.list_tools()

    try:
        anyio.run(run)
    except BaseException as exc:  # anyio wraps it in exception groups
        return any(isinstance(leaf, MCPError) for leaf in leaves(exc))
    return False


def test_stdio_transport_with_the_sdk_client(served: dict[str, Any]) -> None:
    # One key: each stdio session is a process loading the model (HTTP checks all three).
    tool_checks(lambda key: stdio_session(served["index"], key), served["keys"], only_alpha=True)


def test_stdio_server_refuses_a_missing_or_bad_key(served: dict[str, Any]) -> None:
    index = str(served["index"])
    for env, reason in (({}, "PKS_API_KEY is not set"),
                        ({"PKS_API_KEY": "pks_000000000000_bogus"}, "is not a valid key")):
        run = cli("search_api", "mcp", "--index", index, env={**SETTINGS, **env})
        assert run.returncode == 2 and reason in run.stderr and run.stdout == ""
    assert refused(lambda key: stdio_session(served["index"], key), "pks_000000000000_bogus")


def test_http_transport_with_the_sdk_client(served: dict[str, Any]) -> None:
    tool_checks(lambda key: http_session(served["url"], key), served["keys"])
    key_id = served["keys"]["alpha"].split("_")[1]
    log = AuditLog(served["index"], KeyStore(served["index"]))
    events = [e for e in log.events() if e["key_id"] == key_id]
    surfaces = [(e["surface"], e["status"]) for e in events]
    assert ("mcp", 200) in surfaces and ("mcp-document", 200) in surfaces
    assert ("mcp-document", 404) in surfaces  # a refused fetch is recorded, with no document
    assert all(e["documents"] == [] for e in events if e["status"] == 404)


def test_http_transport_refuses_a_bad_or_revoked_key(served: dict[str, Any]) -> None:
    url = served["url"]
    assert refused(lambda key: http_session(url, key), "pks_000000000000_bogus")
    raw = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                     headers={"Authorization": "Bearer pks_000000000000_bogus"})
    assert raw.status_code == 401 and raw.json()["error"]["code"] == "unauthorized"
    assert httpx.post(f"{url}/mcp", json={}).status_code == 401
    record, key = served["store"].create("soon revoked", "alpha", False)

    async def revoked_mid_session() -> None:
        async with http_session(url, key) as session:
            served["store"].revoke(record.key_id)
            await session.call_tool("search_partner_knowledge", {"query": "KESTREL"})

    with pytest.raises(BaseExceptionGroup) as caught:
        anyio.run(revoked_mid_session)
    assert any(isinstance(leaf, MCPError) for leaf in leaves(caught.value))


def test_retrieve_over_http_as_in_the_readme(served: dict[str, Any]) -> None:
    response = httpx.post(f"{served['url']}/v1/retrieve", timeout=60,
                          headers={"Authorization": f"Bearer {served['keys']['beta']}"},
                          json={"query": "fibre sensor drift in salt spray", "max_tokens": 300})
    assert response.status_code == 200
    body = response.json()
    assert body["passages"][0]["doc_id"] == "beta/sensors.md" and body["tokens"] <= 300
    assert body["context"].startswith("[1] ")
    assert {p["doc_id"] for p in body["passages"]} <= VISIBLE["beta"]
