"""What a sharded deployment must equal: the single index's answers, asked through the HTTP API.

The corpus is the access corpus of tests/conftest.py (four partners, a joint grant, an expired
grant, an admins-only folder), built once as one index and once as two shards by document. The
same keys (one per partner and an admin) are created in both, and every question is asked of
both: dense, lexical and hybrid, topic queries and verbatim quotes of every chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests.conftest import VISIBLE, make_access_corpus
from tests.deployment import create_key

MODES = ("dense", "lexical", "hybrid")
QUERIES = [
    "sulfide electrolyte ionic conductivity KESTREL", "fibre Bragg grating drift OSPREY",
    "black mass recycling cobalt recovery PELICAN", "board acquisition budget ALBATROSS",
    "draft plan cut the sensor work package CORMORANT", "pilot line dry room dew point",
    "state of charge Kalman filter", "steering committee Rotterdam", "strain sensors cells",
]
WHO = (*sorted(VISIBLE), "admin")
Post = Callable[[str, dict[str, Any], str], dict[str, Any]]  # (path, body, key) -> JSON


@dataclass(frozen=True)
class Pair:
    single: Path
    sharded: Path
    corpus: Path


def build_pair(base: Path, settings: IndexerSettings, embedder: Embedder) -> Pair:
    corpus = make_access_corpus(base / "corpus")
    single, sharded = base / "single", base / "sharded"
    build(corpus, single, settings, embedder)
    build(corpus, sharded, settings.model_copy(update={"shards": 2}), embedder)
    return Pair(single, sharded, corpus)


def keys_for(index: Path) -> dict[str, str]:
    return {who: create_key(index, None if who == "admin" else who, who) for who in WHO}


def quotes(index: Path) -> list[tuple[str, str]]:
    """(doc_id, first sentence) of every chunk: the canary's quotes."""
    gen = Generation.open_live(index)
    passages = gen.passages(gen.all_chunk_ids().tolist()).values()
    return sorted({(p.doc_id, p.text.split(". ")[0]) for p in passages})


def answers(post: Post, keys: dict[str, str], queries: list[str],
            top_k: int = 10) -> dict[tuple[str, str, str], list[tuple[int, str, float]]]:
    """(who, mode, query) -> [(chunk id, doc id, score)] as the search route returns them."""
    out = {}
    for who in WHO:
        for mode in MODES:
            for query in queries:
                body = post("/v1/search", {"query": query, "top_k": top_k, "mode": mode},
                            keys[who])
                out[(who, mode, query)] = [(r["chunk_id"], r["doc_id"], r["score"])
                                           for r in body["results"]]
    return out


def assert_equal(got: dict[tuple[str, str, str], list[tuple[int, str, float]]],
                 want: dict[tuple[str, str, str], list[tuple[int, str, float]]]) -> None:
    """Same ids in the same order, scores within 1e-5, for every question."""
    assert got.keys() == want.keys()
    for question, expected in want.items():
        found = got[question]
        assert [c for c, _, _ in found] == [c for c, _, _ in expected], question
        assert all(abs(a - b) <= 1e-5 for (_, _, a), (_, _, b) in zip(found, expected,
                                                                       strict=True)), question


def assert_canary(post: Post, keys: dict[str, str], index: Path) -> None:
    """A partner quoting a sentence of a document it may see finds that document first; a
    quote from a document it may not see never brings that document (nor any hidden one)."""
    for doc_id, sentence in quotes(index):
        for who in sorted(VISIBLE):
            results = post("/v1/search", {"query": sentence, "top_k": 10, "mode": "hybrid"},
                           keys[who])["results"]
            docs = [r["doc_id"] for r in results]
            assert set(docs) <= VISIBLE[who], (who, sentence)
            if doc_id in VISIBLE[who]:
                assert docs and docs[0] == doc_id, (who, sentence, docs)
