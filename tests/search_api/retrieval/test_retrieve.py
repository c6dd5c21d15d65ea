"""POST /v1/retrieve: the budget holds (counted with the model's tokenizer), neighbours merge,
citations are numbered, and a partner never receives a passage it may not see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from indexer.store.records import ChunkSpan, Passage
from search_api.identity.keys import KeyStore
from search_api.retrieval.retrieve import citation, merge_neighbours
from search_api.retrieval.stitching import Hit, stitch
from tests.conftest import TEXTS, VISIBLE
from tests.deployment import app_client
from tests.factory import write
from tests.search_api.access.test_access import QUERIES, all_chunk_texts
from tests.search_api.conftest import Clock, auth

# One long paragraph: the splitter must cut it mid-paragraph, so its chunks overlap.
LONG = " ".join(
    f"Finding {n}: the {colour} separator film kept {n * 7} percent of its porosity after "
    f"{n * 40} hours at {60 + n} degrees, so batch {n} passed the SANDPIPER endurance gate."
    for n, colour in enumerate(["amber", "cobalt", "crimson", "ivory", "jade", "ochre",
                                "scarlet", "teal", "umber", "violet"], start=1))


def retrieve(client: TestClient, key: str, query: str, status: int = 200,
             **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/retrieve", json={"query": query, **fields}, headers=auth(key))
    assert response.status_code == status, response.text
    return response.json()


def count(embedder: Embedder, text: str) -> int:
    return len(embedder.tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("max_tokens", [50, 64, 120, 300, 1500, 8000])
def test_context_never_exceeds_the_budget_counted_with_the_models_tokenizer(
        client: TestClient, keys: dict[str, str], embedder: Embedder, max_tokens: int) -> None:
    for query in QUERIES:
        body = retrieve(client, keys["admin"], query, max_tokens=max_tokens, top_k=100)
        assert body["passages"], query
        assert count(embedder, body["context"]) == body["tokens"] <= max_tokens
        for passage in body["passages"]:
            assert passage["tokens"] == count(embedder, passage["text"])
            assert passage["citation"] + "\n" + passage["text"] in body["context"]
        assert sum(p["tokens"] for p in body["passages"]) <= max_tokens
        assert [p["truncated"] for p in body["passages"]].count(True) <= 1


def test_a_small_budget_cuts_the_best_passage_and_a_large_one_holds_everything(
        client: TestClient, keys: dict[str, str], embedder: Embedder) -> None:
    small = retrieve(client, keys["alpha"], "KESTREL electrolyte moisture", max_tokens=50)
    assert len(small["passages"]) == 1 and small["passages"][0]["truncated"]
    assert small["passages"][0]["text"].endswith("…") and small["tokens"] <= 50
    large = retrieve(client, keys["alpha"], "KESTREL electrolyte moisture", max_tokens=8000,
                     top_k=100)
    docs = [p["doc_id"] for p in large["passages"]]
    assert not any(p["truncated"] for p in large["passages"])
    assert len(docs) == len(set(docs)) and set(docs) == VISIBLE["alpha"]  # one per document


def test_citations_are_numbered_in_order_and_name_the_page(
        client: TestClient, keys: dict[str, str]) -> None:
    body = retrieve(client, keys["alpha"], "pilot line first cycle efficiency", top_k=100)
    passages = body["passages"]
    assert [p["number"] for p in passages] == list(range(1, len(passages) + 1))
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert body["context"].startswith(passages[0]["citation"] + "\n")
    positions = [body["context"].index(p["citation"]) for p in passages]
    assert positions == sorted(positions)
    pdf = next(p for p in passages if p["doc_id"] == "alpha/pilot-line.pdf")
    # Its text runs on from page 1 into page 2 (a PDF's page breaks are layout): one chunk,
    # cited by the page its best match lies on (first cycle efficiency: page 2), with its range.
    assert pdf["citation"] == f"[{pdf['number']}] Pilot line report, p. 2 (pp. 1-2)"
    assert (pdf["page"], pdf["page_end"], pdf["pages"]) == (2, 2, [1, 2])
    assert len(pdf["chunk_ids"]) == 1
    assert "page one" in pdf["text"] and "page two" in pdf["text"]
    single = retrieve(client, keys["alpha"], "the dew point of the dry room", top_k=1)
    assert single["passages"][0]["citation"] == "[1] Pilot line report, p. 1 (pp. 1-2)"
    assert single["passages"][0]["page"] == 1


def test_neighbouring_chunks_of_a_document_come_back_as_its_text(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport]) -> None:
    gen = Generation.open_live(access_index[0])
    body = retrieve(client, keys["admin"], "KESTREL moisture glovebox", top_k=100,
                    max_tokens=8000)
    by_doc = {p["doc_id"]: p for p in body["passages"]}
    for doc_id, text in TEXTS.items():
        assert by_doc[doc_id]["chunk_ids"] == gen.document_chunk_ids(doc_id)
        assert by_doc[doc_id]["text"].split() == text.split()


def test_a_partner_never_receives_a_passage_it_may_not_see(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport]) -> None:
    chunks = all_chunk_texts(access_index[0])
    for partner in ("alpha", "beta", "gamma"):
        hidden = [text for doc, text in chunks if doc not in VISIBLE[partner]]
        for query in QUERIES + hidden:
            body = retrieve(client, keys[partner], query, top_k=100, max_tokens=8000)
            assert {p["doc_id"] for p in body["passages"]} <= VISIBLE[partner]
            assert not any(text in body["context"] for text in hidden)


def test_nothing_visible_is_200_with_no_passages(
        client: TestClient, access_index: tuple[Path, BuildReport]) -> None:
    _, key = KeyStore(access_index[0]).create("ghost", "ghost", False)
    body = retrieve(client, key, "board acquisition ALBATROSS")
    assert body["passages"] == [] and body["context"] == "" and body["tokens"] == 0


@pytest.mark.parametrize("fields, message", [
    ({"max_tokens": 49}, "max_tokens: must be at least 50"),
    ({"max_tokens": 8001}, "max_tokens: must be at most 8000"),
    ({"top_k": 0}, "top_k: must be at least 1"),
    ({"on_behalf_of": "Not A Partner"}, "on_behalf_of:"),
    ({"budget": 10}, "budget: is not a known field"),
])
def test_bad_retrieve_requests_are_422(client: TestClient, keys: dict[str, str],
                                       fields: dict[str, Any], message: str) -> None:
    body = retrieve(client, keys["alpha"], "x", status=422, **fields)
    assert body["error"]["code"] == "invalid_request" and message in body["error"]["message"]


def test_unit_merge_stitch_and_cite() -> None:
    def hit(ordinal: int, page: int | None, start: int, text: str, score: float) -> Hit:
        passage = Passage(ordinal + 1, "d", "Deck", "talks/deck.pptx", page, text, "Intro")
        return Hit(passage, ChunkSpan(ordinal + 1, "d", ordinal, page, start, start + len(text)),
                   score)

    page = "alpha beta gamma delta epsilon"
    hits = [hit(0, 1, 0, page[:16], 0.2), hit(1, 1, 11, page[11:], 0.9),
            hit(3, 2, 0, "far away", 0.5)]
    groups = merge_neighbours(hits)
    assert [[h.span.ordinal for h in g] for g in groups] == [[0, 1], [3]]  # best group first
    assert stitch([(h.span.char_start, h.span.char_end, h.passage.text)
                   for h in groups[0]]) == page
    assert stitch([(0, 5, "alpha"), (6, 10, "beta"), (12, 17, "gamma")]) == "alpha beta\n\ngamma"
    assert stitch([(0, 9, "section a"), (0, 9, "section b")]) == "section a\n\nsection b"
    assert citation(1, groups[0]) == "[1] Deck, slide 1, Intro"
    assert citation(2, hits) == "[2] Deck, slide 1 (slides 1-2), Intro"  # its best hit's slide
    report = Passage(9, "r", "Report", "r.md", None, "text", "Report > 2. Results > Cells")
    assert citation(3, [Hit(report, ChunkSpan(9, "r", 0, None, 0, 4), 0.1)]) == \
        "[3] Report, 2. Results > Cells"


@pytest.fixture(scope="module")
def long_client(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
                embedder: Embedder) -> Iterator[tuple[TestClient, str]]:
    base = tmp_path_factory.mktemp("long")
    write(base / "corpus/access.yaml", "partners: [acme]\nrules:\n  - match: '**'\n"
                                      "    allow: '*'\n")
    write(base / "corpus/reports/separator.txt", LONG)
    build(base / "corpus", base / "index", settings, embedder)
    _, key = KeyStore(base / "index").create("acme", "acme", False)
    with app_client(base / "index", today=Clock()) as test_client:
        yield test_client, key


def test_overlapping_chunks_merge_without_repeating_the_overlap(
        long_client: tuple[TestClient, str], embedder: Embedder) -> None:
    client, key = long_client
    body = retrieve(client, key, "SANDPIPER separator porosity", top_k=100, max_tokens=8000)
    [passage] = body["passages"]
    assert len(passage["chunk_ids"]) >= 3  # the paragraph was cut into overlapping chunks
    assert passage["text"] == LONG and passage["citation"] == "[1] separator"
    assert count(embedder, body["context"]) <= 8000
