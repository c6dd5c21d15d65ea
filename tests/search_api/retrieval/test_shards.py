"""A generation written as two shards by document, served in one process (the shards opened
locally and merged), answers every partner's dense, lexical and hybrid queries exactly as the
single index does. The same on a Ray cluster: tests/test_ray_shards.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.layout import SHARDS, is_complete, live_generation_dir
from indexer.store.lexical import TOKENIZE
from indexer.store.reader import Generation
from tests.deployment import app_client
from tests.sharding import (
    QUERIES,
    Pair,
    Post,
    answers,
    assert_canary,
    assert_equal,
    keys_for,
)


def poster(client: TestClient) -> Post:
    def post(path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return dict(response.json())
    return post


@pytest.fixture(scope="module")
def clients(pair: Pair) -> Iterator[tuple[Post, Post, dict[str, str], dict[str, str]]]:
    today = lambda: date(2026, 11, 23)  # noqa: E731
    with app_client(pair.single, today=today) as single, \
            app_client(pair.sharded, today=today) as sharded:
        yield poster(single), poster(sharded), keys_for(pair.single), keys_for(pair.sharded)


def test_the_generation_is_two_stores_of_whole_documents(pair: Pair) -> None:
    whole = Generation.open_live(pair.sharded)
    assert whole.sharded and is_complete(whole.path) and (whole.path / SHARDS).is_dir()
    shards = whole.shards()
    docs = [{p.doc_id for p in s.passages(s.all_chunk_ids().tolist()).values()} for s in shards]
    assert all(docs) and not docs[0] & docs[1]  # both used, no document split
    assert sorted(int(i) for s in shards for i in s.all_chunk_ids()) == \
        whole.all_chunk_ids().tolist() == Generation.open_live(pair.single).all_chunk_ids().tolist()
    live = live_generation_dir(pair.sharded)
    assert live is not None and not (live / "vectors.npy").exists()  # vectors only in shards
    # The top level has no lexical index; it cites pages with its shards' analysis.
    top, shard = Generation.open_live(pair.sharded).analyzer(), shards[0].analyzer()
    assert (top.tokenize, top.folded) == (shard.tokenize, shard.folded) == (TOKENIZE, True)


def test_sharded_answers_equal_the_single_index(
        clients: tuple[Post, Post, dict[str, str], dict[str, str]]) -> None:
    single, sharded, single_keys, sharded_keys = clients
    assert_equal(answers(sharded, sharded_keys, QUERIES), answers(single, single_keys, QUERIES))


def test_the_canary_holds_on_the_sharded_deployment(
        clients: tuple[Post, Post, dict[str, str], dict[str, str]], pair: Pair) -> None:
    _, sharded, _, keys = clients
    assert_canary(sharded, keys, pair.sharded)


def test_the_audit_and_the_metrics_say_which_plan_ran_and_the_answer_does_not(
        pair: Pair) -> None:
    """A dense or hybrid search records `dense_plan` in the audit and counts it in /metrics;
    a lexical one records none; the results themselves carry no trace of the plan."""
    from search_api.audit.files import AuditLog
    from search_api.http.schemas import SearchResult
    from search_api.identity.keys import KeyStore

    keys = keys_for(pair.sharded)
    key = keys["alpha"]
    with app_client(pair.sharded, today=lambda: date(2026, 11, 23)) as client:
        for mode in ("dense", "hybrid", "lexical"):
            response = client.post("/v1/search", json={"query": "KESTREL", "mode": mode},
                                   headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200
            for result in response.json()["results"]:
                assert set(result) <= set(SearchResult.model_fields)  # nothing about plans
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {keys['admin']}"}).text
    events = AuditLog(pair.sharded, KeyStore(pair.sharded)).events()
    plans = {e["mode"]: e["dense_plan"] for e in events if e["query"] == "KESTREL"}
    assert plans == {"dense": "exact", "hybrid": "exact", "lexical": None}
    assert 'pks_dense_searches_total{plan="exact"} 2.0' in metrics


def test_a_rebuild_of_a_sharded_index_reuses_every_embedding(
        pair: Pair, settings: IndexerSettings, embedder: Embedder) -> None:
    """The next night's build reads the live generation's vectors from its shards."""
    before = Generation.open_live(pair.sharded).name
    report = build(pair.corpus, pair.sharded, settings.model_copy(update={"shards": 2}),
                   embedder)
    assert report.embedded == 0 and report.reused == report.chunks > 0
    assert Generation.open_live(pair.sharded).name != before


def test_the_shards_statistics_add_up_to_the_single_index(pair: Pair) -> None:
    """dfs_query_then_fetch: each shard counts BM25's statistics over its part of a partner's
    allowed set; their sum is the single index's count over the whole set, which no shard has
    alone, so scoring with the sum gives each chunk its single-index score."""
    from functools import reduce
    from operator import add

    from search_api.access.allowed import AccessIndex
    from search_api.identity.principal import Principal
    from search_api.retrieval.lexical import query_terms

    single, sharded = Generation.open_live(pair.single), Generation.open_live(pair.sharded)
    terms = query_terms("strain sensors inside pouch cells KESTREL")
    for partner in ("alpha", "beta", "gamma", "delta"):
        allowed = AccessIndex(single).allowed_for(Principal("k", partner, False),
                                                  date(2026, 11, 23))
        parts = [shard.lexical_stats(terms, allowed.ids) for shard in sharded.shards()]
        assert reduce(add, parts) == single.lexical_stats(terms, allowed.ids), partner
        assert all(part.chunks < len(allowed) for part in parts), partner
    assert sharded.lexical_index() is None  # the top level is not searched: its shards are
