"""The oracle of lexical statistics: what a caller gets in lexical and hybrid mode (passages,
order, scores) equals what an index built from only the documents it may see returns. Four
partners, an expired grant, documents no rule covers, a folder filter and act-as: nothing the
caller may not see shapes its answer (docs/ACCESS.md, "What shapes a result")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from search_api.identity.keys import KeyStore
from search_api.identity.principal import ACT_AS, DEFAULT_SCOPES
from tests.conftest import VISIBLE
from tests.deployment import app_client, create_key
from tests.factory import write
from tests.search_api.conftest import auth

QUERIES = [
    "sulfide electrolyte ionic conductivity KESTREL", "board acquisition budget ALBATROSS",
    "black mass recycling cobalt lithium PELICAN", "sensor calibration drift of the partners",
    "pilot line dry room dew point", "state of charge Kalman filter",
    "steering committee Rotterdam every quarter", "cells cell", "the of and",
]
MODES = ("lexical", "hybrid")


def files_of(index: Path, doc_ids: set[str]) -> set[str]:
    """The corpus files the documents were read from (a JSONL export holds several)."""
    generation = Generation.open_live(index)
    return {row.path for d in doc_ids if (row := generation.document(d)) is not None}


@pytest.fixture(scope="module")
def alone(access_index: tuple[Path, BuildReport], tmp_path_factory: pytest.TempPathFactory,
          settings: IndexerSettings, embedder: Embedder):  # type: ignore[no-untyped-def]
    """index_of(doc ids) -> an index built from only those documents' files, with an admin key
    (each set built once per module)."""
    corpus = access_index[0].parent / "corpus"
    built: dict[frozenset[str], tuple[Path, str]] = {}

    def index_of(doc_ids: set[str]) -> tuple[Path, str]:
        files = frozenset(files_of(access_index[0], doc_ids))
        if files not in built:
            base = tmp_path_factory.mktemp("alone")
            for rel in files:
                (base / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(corpus / rel, base / "corpus" / rel)
            write(base / "corpus" / "access.yaml",
                  'partners: [solo]\nrules:\n  - match: "**"\n    allow: [solo]\n')
            build(base / "corpus", base / "index", settings, embedder)
            built[files] = (base / "index", create_key(base / "index", None, "oracle"))
        return built[files]

    return index_of


def answer(client: TestClient, key: str, query: str, mode: str, top_k: int,
           **extra: object) -> list[tuple[int, str, str, float]]:
    response = client.post("/v1/search", json={"query": query, "mode": mode, "top_k": top_k,
                                               **extra}, headers=auth(key))
    assert response.status_code == 200, response.text
    return [(r["chunk_id"], r["doc_id"], r["text"], r["score"])
            for r in response.json()["results"]]


def assert_same(got: list[tuple[int, str, str, float]],
                expected: list[tuple[int, str, str, float]], mode: str) -> None:
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    # Lexical scores are computed alike to the last bit; hybrid fuses dense scores, whose
    # vectors two builds embed in batches of other neighbours (float noise, ~1e-7).
    tolerance = 1e-6 if mode == "lexical" else 1e-4
    assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], abs=tolerance)


def compare(client: TestClient, key: str, reference: tuple[Path, str], **extra: object) -> int:
    """Every query, mode and depth; returns how many answers had passages (so that a test
    comparing two empty answers cannot pass unnoticed)."""
    with app_client(reference[0]) as alone_client:
        answered = 0
        for query in QUERIES:
            for mode in MODES:
                for top_k in (3, 100):
                    got = answer(client, key, query, mode, top_k, **extra)
                    assert_same(got, answer(alone_client, reference[1], query, mode, top_k),
                                mode)
                    answered += bool(got)
    return answered


@pytest.mark.parametrize("partner", sorted(VISIBLE))
def test_a_partner_gets_what_an_index_of_its_documents_alone_returns(
        client: TestClient, keys: dict[str, str], alone, partner: str) -> None:  # type: ignore[no-untyped-def]
    """gamma's grant expired in 2020: its recycling study counts nowhere in gamma's scores."""
    assert compare(client, keys[partner], alone(VISIBLE[partner])) > len(QUERIES)


def test_a_folder_filter_scores_with_the_statistics_of_the_folder(
        client: TestClient, keys: dict[str, str], alone) -> None:  # type: ignore[no-untyped-def]
    within = {"alpha/electrolyte.txt", "alpha/pilot-line.pdf"}
    assert compare(client, keys["alpha"], alone(within), within=["alpha/**"]) > 0


def test_acting_for_a_partner_scores_with_what_both_may_see(
        client: TestClient, access_index: tuple[Path, BuildReport], alone) -> None:  # type: ignore[no-untyped-def]
    store = KeyStore(access_index[0])
    bot = store.create("oracle bot", "alpha", False, DEFAULT_SCOPES | {ACT_AS})[1]
    both = VISIBLE["alpha"] & VISIBLE["beta"]
    assert compare(client, bot, alone(both), on_behalf_of="beta") > 0
