"""Hybrid retrieval on a real index (real model, real FTS5): every mode stays inside the allowed
set and equals brute force over it; quoting a document finds it among near-identical boilerplate;
FTS5 syntax in a query is searched as text."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from search_api.access.allowed import EMPTY, AllowedSet
from search_api.identity.principal import Principal
from search_api.retrieval.dense import dense
from search_api.retrieval.fusion import document_aware
from search_api.retrieval.lexical import lexical, query_terms
from search_api.retrieval.live import LoadedIndex, load_index
from search_api.retrieval.search import CANDIDATES, WEIGHTS, search
from tests.factory import write
from tests.search_api.conftest import auth

CODES = ["KESTREL", "OSPREY", "HERON", "PELICAN", "ALBATROSS", "CORMORANT", "PUFFIN", "GANNET",
         "PETREL", "SHEARWATER", "FULMAR", "SKUA", "TERN", "GUILLEMOT", "RAZORBILL", "EIDER",
         "MERGANSER", "GREBE", "DIVER", "SHAG", "EGRET", "BITTERN", "CRANE", "STORK"]
MANIFEST = """\
partners: [north, south, east]
rules:
  - match: "north/**"
    allow: [north]
  - match: "south/**"
    allow: [south]
  - match: "common/**"
    allow: "*"
"""
FOLDERS = ["north", "south", "common", "board"]  # board/: no rule, admins only


def boilerplate(i: int) -> str:
    """Reports that differ only in code names and numbers, as monthly templates do."""
    code, rng = CODES[i], random.Random(i)
    batch, temp, cycles, kept, week = (rng.randint(1000, 9999), rng.choice([25, 35, 45, 60]),
                                       rng.randint(2, 9) * 100, rng.randint(80, 97),
                                       rng.randint(1, 52))
    return (f"Monthly status report of project {code}.\n\n"
            f"The {code} cell batch {batch} was cycled at {temp} degrees Celsius for {cycles} "
            f"cycles and kept {kept} percent of its capacity. The electrolyte supplier delivered "
            f"on time and the pilot line ran without unplanned stops this month.\n\n"
            f"The next review of project {code} is planned for week {week}; the steering "
            f"committee will decide on the scale-up of batch {batch} after that review.")


@pytest.fixture(scope="module")
def boiler(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
           embedder: Embedder) -> LoadedIndex:
    base = tmp_path_factory.mktemp("boiler")
    write(base / "corpus" / "access.yaml", MANIFEST)
    for i in range(len(CODES)):
        write(base / "corpus" / FOLDERS[i % 4] / f"report-{i:02d}.md", boilerplate(i))
    build(base / "corpus", base / "index", settings, embedder)
    return load_index(Generation.open_live(base / "index"), embedder, threads=1)


def allowed_sets(index: LoadedIndex) -> dict[str, AllowedSet]:
    today = date(2026, 11, 23)
    return {who: index.access.allowed_for(Principal(who, None if who == "admin" else who,
                                                    who == "admin"), today)
            for who in ("north", "south", "east", "admin")}


QUERIES = ["cell batch cycled at 45 degrees", "KESTREL OSPREY HERON review", "steering committee",
           "capacity percent", "project GANNET week", "unplanned stops of the pilot line"]


@pytest.mark.parametrize("query", QUERIES)
def test_lexical_top_k_within_the_allowed_set_equals_brute_force(boiler: LoadedIndex,
                                                                  query: str) -> None:
    """Brute force: every matching chunk of the allowed set ranked with the allowed set's own
    statistics (tests/search_api/retrieval/test_lexical_oracle.py checks those against a
    separate index)."""
    assert lexical(boiler.shards, query, allowed_sets(boiler)["admin"], 10_000)
    for who, allowed in allowed_sets(boiler).items():
        everything = lexical(boiler.shards, query, allowed, 10_000)
        for k in (1, 3, 10):
            expected = everything[:k]
            got = lexical(boiler.shards, query, allowed, k)
            assert [c for c, _ in got] == [c for c, _ in expected], (who, k)
            assert np.allclose([s for _, s in got], [s for _, s in expected]), (who, k)
            assert all(c in allowed for c, _ in got)


def test_an_empty_allowed_set_finds_nothing(boiler: LoadedIndex) -> None:
    assert lexical(boiler.shards, "project report", EMPTY, 10) == []
    assert search(boiler, "project report", EMPTY, 10, "hybrid").results == []


@pytest.mark.parametrize("query", QUERIES)
def test_hybrid_equals_the_fusion_of_brute_force_lists(boiler: LoadedIndex, query: str) -> None:
    vector = boiler.embedder.embed_query(query)
    admin = allowed_sets(boiler)["admin"]
    all_dense = dense(boiler.shards, vector, admin, 10_000).ranked
    for who, allowed in allowed_sets(boiler).items():
        all_lexical = lexical(boiler.shards, query, allowed, 10_000)  # its own statistics
        lists = [[(c, s) for c, s in ranked if c in allowed][:CANDIDATES]
                 for ranked in (all_dense, all_lexical)]
        spans = boiler.generation.chunk_spans([c for c, _ in all_dense])
        doc_of = {c: span.doc_id for c, span in spans.items()}
        expected = [c for c, _ in document_aware(lists, WEIGHTS, doc_of)][:5]
        got = [p.chunk_id for p, _ in search(boiler, query, allowed, 5, "hybrid").results]
        assert got == expected, who
        assert set(got) <= set(allowed.ids.tolist())


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
@pytest.mark.parametrize("i", range(len(CODES)))
def test_quoting_a_sentence_finds_its_document_first(boiler: LoadedIndex, mode: str,
                                                      i: int) -> None:
    sentence = boilerplate(i).split("\n\n")[1].split(". ")[0] + "."
    path = f"{FOLDERS[i % 4]}/report-{i:02d}.md"
    sets = allowed_sets(boiler)
    for who in ("admin", {"north": "north", "south": "south"}.get(FOLDERS[i % 4], "east")):
        if who == "east" and FOLDERS[i % 4] == "board":
            continue
        results = search(boiler, sentence, sets[who], 3, mode).results  # type: ignore[arg-type]
        assert results[0][0].path == path, (who, sentence, [p.path for p, _ in results])


SYNTAX = ['"unbalanced quote', 'KESTREL*', "-batch", "title:report", "(cycled OR", "AND",
          "OR OR OR", "NEAR(batch cycled)", "batch NOT report", "***", "^start", "{a b}",
          "c'est l'été", "a + b = c", ":", '""', "col:umn \"x\" * (y", "😀 emoji"]


@pytest.mark.parametrize("query", SYNTAX)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_fts_syntax_in_a_query_never_fails(client: TestClient, keys: dict[str, str],
                                           query: str, mode: str) -> None:
    response = client.post("/v1/search", json={"query": query, "mode": mode},
                           headers=auth(keys["alpha"]))
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["results"], list)


def test_fts_operators_are_searched_as_words(client: TestClient, keys: dict[str, str]) -> None:
    """`KESTREL*` is not a prefix query and `-`/`:` are not operators: the words still match."""
    for query in ("KESTREL*", '"KESTREL', "-KESTREL", "electrolyte:KESTREL", "(KESTREL)"):
        results = client.post("/v1/search", json={"query": query, "mode": "lexical"},
                              headers=auth(keys["alpha"])).json()["results"]
        assert results and "KESTREL" in results[0]["text"], query


def test_stop_words_are_left_out_unless_they_are_the_whole_query(
        client: TestClient, keys: dict[str, str]) -> None:
    assert query_terms("The effect of KESTREL on the line") == ["effect", "kestrel", "line"]
    assert query_terms("to be or not to be") == ["to", "be", "or", "not", "to", "be"]
    results = client.post("/v1/search", json={"query": "the of and", "mode": "lexical"},
                          headers=auth(keys["alpha"])).json()["results"]
    assert results  # a query of stop words alone still searches them


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_returns_only_what_the_caller_may_see(
        client: TestClient, keys: dict[str, str], mode: str) -> None:
    from tests.conftest import VISIBLE

    for who, visible in VISIBLE.items():
        response = client.post("/v1/search", json={"query": "codename KESTREL OSPREY PELICAN "
                                                   "ALBATROSS CORMORANT sensor battery",
                                                   "top_k": 100, "mode": mode},
                               headers=auth(keys[who]))
        assert response.status_code == 200
        docs = {r["doc_id"] for r in response.json()["results"]}
        assert docs and docs <= visible, (who, mode, docs - visible)


def test_mode_defaults_to_hybrid(client: TestClient, keys: dict[str, str]) -> None:
    body = {"query": "strain sensor drift in salt spray"}
    default = client.post("/v1/search", json=body, headers=auth(keys["beta"])).json()
    hybrid = client.post("/v1/search", json={**body, "mode": "hybrid"},
                         headers=auth(keys["beta"])).json()
    assert default == hybrid and default["results"]


@pytest.mark.parametrize("mode", ["semantic", "HYBRID", "", None, 3])
def test_an_unknown_mode_is_422(client: TestClient, keys: dict[str, str], mode: object) -> None:
    response = client.post("/v1/search", json={"query": "x", "mode": mode},
                           headers=auth(keys["alpha"]))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith("mode:")
    assert "hybrid" in error["message"]



def test_chunk_documents_group_chunks_as_their_rows_do(boiler: LoadedIndex) -> None:
    """The in-memory chunk -> document map that the fusion uses names the same documents as
    the chunks' rows, and leaves out ids the generation does not hold."""
    ids = boiler.generation.all_chunk_ids().tolist()
    spans = boiler.generation.chunk_spans(ids)
    numbers = boiler.documents([*ids, -12345])
    assert set(numbers) == set(ids)
    document_of_number = {numbers[c]: spans[c].doc_id for c in ids}
    assert all(document_of_number[numbers[c]] == spans[c].doc_id for c in ids)
    assert len(document_of_number) == len({span.doc_id for span in spans.values()})
