"""No passage ever reaches a partner that may not see it; each partner gets its true top-k."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from indexer.embed.embedder import Embedder
from indexer.store.reader import Generation
from tests.conftest import ALL_DOCS, GLOSSARY, PDF_PAGES, TEXTS, VISIBLE
from tests.search_api.conftest import Clock, auth

PARTNERS = sorted(VISIBLE)


def all_chunk_texts(index: Path) -> list[tuple[str, str]]:
    """(doc_id, text) of every chunk in the index: the queries that quote other partners."""
    gen = Generation.open_live(index)
    passages = gen.passages(gen.all_chunk_ids().tolist())
    return sorted((p.doc_id, p.text) for p in passages.values())


def search(client: TestClient, key: str, query: str, top_k: int = 100,
           mode: str = "hybrid") -> list[dict]:
    response = client.post("/v1/search", json={"query": query, "top_k": top_k, "mode": mode},
                           headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()["results"]


QUERIES = [
    "sulfide electrolyte ionic conductivity KESTREL", "fibre Bragg grating drift OSPREY",
    "black mass recycling cobalt recovery PELICAN", "board acquisition budget ALBATROSS",
    "draft plan cut the sensor work package CORMORANT", "pilot line dry room dew point",
    "state of charge Kalman filter", "steering committee Rotterdam",
]


@pytest.mark.parametrize("partner", PARTNERS)
def test_no_result_from_an_invisible_document_even_for_verbatim_quotes(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport],
        partner: str) -> None:
    quotes = [text for _, text in all_chunk_texts(access_index[0])]
    seen: set[str] = set()
    for query in QUERIES + quotes:
        results = search(client, keys[partner], query)
        docs = {r["doc_id"] for r in results}
        assert docs <= VISIBLE[partner], f"{partner} saw {docs - VISIBLE[partner]} for {query!r}"
        seen |= docs
    assert seen == VISIBLE[partner]  # and everything it may see is findable


def test_a_verbatim_quote_finds_its_passage_for_those_allowed(
        client: TestClient, keys: dict[str, str]) -> None:
    quote = TEXTS["alpha/electrolyte.txt"].split("\n\n")[0]
    top = search(client, keys["alpha"], quote, top_k=1)[0]
    assert top["doc_id"] == "alpha/electrolyte.txt" and top["score"] > 0.9
    for other in ("beta", "gamma", "delta"):
        assert all(r["doc_id"] != "alpha/electrolyte.txt"
                   for r in search(client, keys[other], quote))


def test_expired_and_uncovered_documents_are_invisible_but_admins_see_all(
        client: TestClient, keys: dict[str, str]) -> None:
    gamma = {r["doc_id"] for r in search(client, keys["gamma"], "black mass recycling PELICAN")}
    assert "gamma/recycling.txt" not in gamma  # grant ended 2020-01-01
    admin = {r["doc_id"] for r in search(client, keys["admin"], "anything at all", top_k=100)}
    assert admin == ALL_DOCS  # incl. internal/ (no rule) and drafts/ (empty allow)


def test_until_is_checked_at_query_time_and_is_inclusive(
        client: TestClient, keys: dict[str, str], clock: Clock) -> None:
    query = "black mass recycling PELICAN"
    try:
        clock.today = date(2020, 1, 1)  # the last day of gamma's grant
        assert "gamma/recycling.txt" in {r["doc_id"] for r in search(client, keys["gamma"], query)}
        clock.today = date(2020, 1, 2)
        assert "gamma/recycling.txt" not in {
            r["doc_id"] for r in search(client, keys["gamma"], query)}
        clock.today = date(2100, 1, 1)  # the joint grant has ended too
        assert "joint/integration.md" not in {
            r["doc_id"] for r in search(client, keys["alpha"], "HERON swelling pouch cells")}
    finally:
        clock.today = date(2026, 11, 23)


def test_true_top_k_even_when_a_partner_sees_a_small_share(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport]) -> None:
    gen = Generation.open_live(access_index[0])
    total = len(gen.vectors)
    delta_chunks = sum(1 for doc_id, _ in all_chunk_texts(access_index[0])
                       if doc_id in VISIBLE["delta"])
    assert delta_chunks < total / 3
    # A post-filter of the global top-k would return nothing here: every top hit is alpha's.
    results = search(client, keys["delta"], TEXTS["alpha/electrolyte.txt"], top_k=5)
    assert len(results) == min(5, delta_chunks)
    assert len(search(client, keys["delta"], "anything", top_k=100)) == delta_chunks


@pytest.mark.parametrize("partner", PARTNERS + ["admin"])
def test_oracle_filtered_search_equals_exact_search_over_visible_chunks_alone(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport],
        embedder: Embedder, partner: str) -> None:
    gen = Generation.open_live(access_index[0])
    ids = gen.all_chunk_ids()
    passages = gen.passages(ids.tolist())
    visible_docs = ALL_DOCS if partner == "admin" else VISIBLE[partner]
    mine = np.array([i for i in ids.tolist() if passages[i].doc_id in visible_docs])
    matrix = gen.vectors.vectors(mine)
    for query in QUERIES + [PDF_PAGES[1], GLOSSARY[0]["text"]]:
        for top_k in (1, 3, 10):
            scores = matrix @ embedder.embed([query])[0]
            order = sorted(range(len(mine)), key=lambda j: (-scores[j], mine[j]))[:top_k]
            got = search(client, keys[partner], query, top_k=top_k, mode="dense")
            assert [r["chunk_id"] for r in got] == [int(mine[j]) for j in order], (partner, query)
            assert [r["score"] for r in got] == pytest.approx([float(scores[j]) for j in order],
                                                              abs=1e-4)


def test_results_carry_document_page_and_title(client: TestClient, keys: dict[str, str]) -> None:
    top = search(client, keys["alpha"], "cell formation first cycle efficiency", top_k=1)[0]
    # A PDF's text runs on across pages; its one chunk cites the page the words asked for are
    # on, and gives its range.
    assert top["path"] == "alpha/pilot-line.pdf" and (top["page"], top["pages"]) == (2, [1, 2])
    assert top["title"] == "Pilot line report"
    assert top["doc_id"] == "alpha/pilot-line.pdf" and "eighteen hours" in top["text"]
    gloss = search(client, keys["delta"], "Kalman filter coulomb counting", top_k=1)[0]
    assert (gloss["doc_id"], gloss["path"], gloss["page"]) == (
        "gloss-soc", "shared/glossary.jsonl", None)
