"""A request's work depends only on what its caller may see: a word, folder or document that
exists only where the caller may not look costs exactly what one that exists nowhere costs.

Counted, not timed (benchmarks/timing_channel.py times it): vocabulary look-ups, (access
group, term) probes, postings lists found and postings read (indexer/store/work.py), document
paths matched by `within`, and the SQLite virtual-machine steps of the generation's reads. For
every partner of the access corpus (gamma's own grant expired), the single index and its two
shards, lexical and hybrid search, `within`, the document download and both MCP tools.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from indexer.store.reader import Generation
from indexer.store.work import Work, counting
from search_api.identity.keys import KeyStore
from search_api.retrieval.live import IndexHolder
from tests.deployment import app_client
from tests.search_api.conftest import auth
from tests.search_api.retrieval.test_documents import mcp_call
from tests.sharding import Pair

# Words that occur only in documents each partner may not see (checked below: the admin finds
# each, the partner none), and words that occur nowhere, six of each.
HIDDEN = {
    "alpha": "OSPREY polyimide picometres PELICAN ALBATROSS CORMORANT",
    "beta": "KESTREL glovebox annealing PELICAN ALBATROSS CORMORANT",
    "gamma": "PELICAN hydrometallurgical leaching KESTREL OSPREY ALBATROSS",  # its own, expired
    "delta": "KESTREL OSPREY HERON PELICAN ALBATROSS CORMORANT",
}
ABSENT = "zorbulent quixotrap flimmerax vontagrel plumbrix skerravint"
VISIBLE_WORDS = {"alpha": "KESTREL", "beta": "OSPREY", "gamma": "Rotterdam", "delta": "wiki"}
TODAY = date(2026, 11, 23)


class Steps:
    """SQLite virtual-machine instructions run by the generation's connections (every
    thread's): the same statements over the same index entries take the same steps."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, generation: Generation) -> None:
        original = generation._db

        def counted() -> sqlite3.Connection:
            db = original()
            db.set_progress_handler(self._step, 1)
            return db

        generation._db = counted  # type: ignore[method-assign]

    def _step(self) -> int:
        self.count += 1
        return 0


def measured(call: Callable[[], object], steps: Steps | None = None) -> dict[str, int]:
    """The work of one call: the store's counts, and the SQLite steps when traced."""
    if steps is not None:
        steps.count = 0
    with counting() as work:
        call()
    return {**work.as_dict(), "sqlite_steps": steps.count if steps else 0}


def search(client: TestClient, key: str, query: str, mode: str = "lexical",
           within: list[str] | None = None) -> list[dict]:
    body: dict[str, object] = {"query": query, "top_k": 10, "mode": mode}
    if within is not None:
        body["within"] = within
    response = client.post("/v1/search", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def assert_hidden_costs_what_absent_costs(client: TestClient, keys: dict[str, str],
                                          steps: Steps | None, shards: int = 1) -> None:
    for who, hidden in HIDDEN.items():
        for word in hidden.split():  # the test's premise, checked
            assert search(client, keys["admin"], word), word
            assert not search(client, keys[who], word), (who, word)
        for word in ABSENT.split():
            assert not search(client, keys["admin"], word), word
        key = keys[who]
        for mode in ("lexical", "hybrid"):
            cost = measured(lambda m=mode, h=hidden, k=key: search(client, k, h, m), steps)
            assert cost == measured(lambda m=mode, k=key: search(client, k, ABSENT, m),
                                    steps), (who, mode)
            # each word looked up twice per shard (the statistics, then the search), and found
            # in none of the caller's groups
            assert cost["terms"] == shards * 2 * 6 and cost["probes"] >= 2 * 6
            assert cost["lists"] == cost["postings"] == 0
        seen = measured(lambda w=who: search(client, keys[w], VISIBLE_WORDS[w]), steps)
        assert seen["lists"] >= 1 and seen["postings"] >= 1  # the counts see visible work


@pytest.fixture(scope="module")
def traced(access_index: tuple[Path, BuildReport]) -> Iterator[tuple[TestClient, Steps]]:
    """The app over the access corpus with its own connections, their SQLite steps counted."""
    holder = IndexHolder(access_index[0], torch_threads=1)
    steps = Steps()
    steps.install(holder.get().generation)
    with app_client(access_index[0], holder=holder, today=lambda: TODAY) as client:
        yield client, steps


def test_a_hidden_only_word_costs_what_an_absent_word_costs(
        traced: tuple[TestClient, Steps], keys: dict[str, str]) -> None:
    client, steps = traced
    assert_hidden_costs_what_absent_costs(client, keys, steps)


def test_the_same_holds_on_a_sharded_generation(pair: Pair) -> None:
    store = KeyStore(pair.sharded)
    keys = {who: store.create(f"work {who}", None if who == "admin" else who,
                              who == "admin")[1] for who in (*HIDDEN, "admin")}
    with app_client(pair.sharded, today=lambda: TODAY) as client:
        assert_hidden_costs_what_absent_costs(client, keys, None, shards=2)
        with counting() as work:
            search(client, keys["beta"], "KESTREL OSPREY")
        assert work.terms == 2 * 2 * 2  # two shards, two rounds (statistics, search), two words


def test_within_a_hidden_folder_costs_what_within_a_missing_one_costs(
        traced: tuple[TestClient, Steps], keys: dict[str, str]) -> None:
    client, steps = traced
    search(client, keys["admin"], "cells", within=["shared/**"])  # the paths, read once
    for who, folder in (("beta", "alpha"), ("alpha", "internal"), ("gamma", "gamma")):
        # Globs no other test uses: each is matched for the first time by both calls.
        hidden = [f"{folder}/*.t?t", f"{folder}/*.m?"]
        absent = [f"omega-{who}/*.t?t", f"omega-{who}/*.m?"]
        cost = measured(lambda w=who, h=hidden: search(client, keys[w], "cells", within=h),
                        steps)
        assert cost == measured(lambda w=who, a=absent: search(client, keys[w], "cells",
                                                               within=a), steps), who
        assert cost["paths"] > 0
        assert not search(client, keys[who], "cells", within=hidden)


def test_a_hidden_document_costs_what_a_missing_one_costs_to_download_or_fetch(
        traced: tuple[TestClient, Steps], keys: dict[str, str]) -> None:
    client, steps = traced
    for who, hidden, missing in (("beta", "alpha/electrolyte.txt", "alpha/electrolyte.txz"),
                                 ("alpha", "internal/board.md", "internal/board.mx"),
                                 ("gamma", "gamma/recycling.txt", "gamma/recycling.tx"),
                                 ("delta", "joint/integration.md", "joint/integration.mx")):
        def download(doc_id: str, w: str = who) -> None:
            assert client.get(f"/v1/documents/{doc_id}",
                              headers=auth(keys[w])).status_code == 404

        def fetch(doc_id: str, w: str = who) -> None:
            assert mcp_call(client, keys[w], "fetch_document", {"doc_id": doc_id})["isError"]

        for call in (download, fetch):
            cost = measured(lambda c=call, h=hidden: c(h), steps)
            assert cost == measured(lambda c=call, m=missing: c(m), steps), (who, call)
            assert cost["sqlite_steps"] > 0
        shown = measured(lambda w=who: client.get("/v1/documents/shared/overview.md",
                                                  headers=auth(keys[w])), steps)
        assert shown["sqlite_steps"] > cost["sqlite_steps"]  # a visible one costs more


def test_the_mcp_search_tool_costs_the_same_for_hidden_and_absent_words(
        traced: tuple[TestClient, Steps], keys: dict[str, str]) -> None:
    client, _ = traced
    for who, hidden in HIDDEN.items():
        def tool(query: str, w: str = who) -> None:
            assert not mcp_call(client, keys[w], "search_partner_knowledge",
                                {"query": query})["isError"]

        cost = measured(lambda h=hidden: tool(h))
        assert cost == measured(lambda: tool(ABSENT)) and cost["terms"] == 2 * 6, who


def test_nothing_is_counted_unless_someone_counts() -> None:
    from indexer.store import work

    assert work._active is None
    with counting() as counted:
        work.tally(terms=2)
    work.tally(terms=5)
    assert counted == Work(terms=2) and work._active is None
