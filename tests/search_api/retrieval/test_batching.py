"""The query batcher with the real model: concurrent queries are embedded together, and each
caller gets exactly the vector its own query has alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexer.embed.embedder import Embedder
from search_api.retrieval.batching import BatchingEmbedder
from search_api.settings import Batching

QUERIES = [f"question {i}: which electrolyte batch reached {i * 1.5:.1f} mS/cm at room "
           f"temperature" + " after annealing" * (i % 4) for i in range(24)]


@pytest.fixture(scope="module")
def alone(embedder: Embedder) -> np.ndarray:
    return np.stack([embedder.embed_query(q) for q in QUERIES])


def test_concurrent_queries_share_batches_and_keep_their_own_vectors(
        embedder: Embedder, alone: np.ndarray) -> None:
    batcher = BatchingEmbedder(embedder, Batching(workers=1, max_batch=8, window_ms=20))
    with ThreadPoolExecutor(len(QUERIES)) as pool:
        vectors = np.stack(list(pool.map(batcher.embed_query, QUERIES)))
    assert np.abs(vectors - alone).max() < 1e-5  # padding in a batch changes nothing
    assert batcher.queries == len(QUERIES)
    assert batcher.batches < len(QUERIES)  # some were embedded together


def test_a_query_alone_is_its_own_batch_and_the_interface_is_the_embedders(
        embedder: Embedder, alone: np.ndarray) -> None:
    batcher = BatchingEmbedder(embedder, Batching(workers=2, max_batch=32, window_ms=5))
    for i, query in enumerate(QUERIES[:4]):
        assert np.abs(batcher.embed_query(query) - alone[i]).max() < 1e-5
    assert batcher.batches == 4 and batcher.queries == 4
    assert (batcher.dim, batcher.max_tokens, batcher.model) == \
        (embedder.dim, embedder.max_tokens, embedder.model)
    assert batcher.tokenizer is embedder.tokenizer
    assert np.abs(batcher.embed(QUERIES[:2]) - alone[:2]).max() < 1e-4


class Recording(BatchingEmbedder):
    """The batcher, noting which thread ran each forward pass, over how many queries, busy."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.passes: list[tuple[str, int, bool]] = []

    def embed_queries(self, texts: Sequence[str], busy: bool = False) -> np.ndarray:
        self.passes.append((threading.current_thread().name, len(texts), busy))
        return super().embed_queries(texts, busy)


def test_a_query_alone_takes_the_full_pass_and_concurrent_ones_busy_passes(
        embedder: Embedder, alone: np.ndarray) -> None:
    """A lone query is embedded at once on all the pass's threads (its latency); batches of
    concurrent queries, and the pass after one, run as busy passes (fewer threads)."""
    batcher = Recording(embedder, Batching(workers=1, max_batch=8, window_ms=20))
    assert np.abs(batcher.embed_query(QUERIES[0]) - alone[0]).max() < 1e-5
    assert batcher.passes == [("query-embed-0", 1, False)]
    with ThreadPoolExecutor(len(QUERIES)) as pool:
        vectors = np.stack(list(pool.map(batcher.embed_query, QUERIES)))
    assert np.abs(vectors - alone).max() < 1e-5
    assert any(size > 1 for _, size, _ in batcher.passes)
    assert all(busy for _, size, busy in batcher.passes if size > 1)
    assert sum(size for _, size, _ in batcher.passes) == len(QUERIES) + 1 == batcher.queries


def test_a_failing_batch_fails_its_callers_and_the_worker_goes_on(
        embedder: Embedder, alone: np.ndarray) -> None:
    batcher = BatchingEmbedder(embedder, Batching(workers=1, max_batch=4, window_ms=0))
    with pytest.raises((TypeError, ValueError)):
        batcher.embed_query(12345)  # type: ignore[arg-type]  # not text: the tokenizer refuses
    assert np.abs(batcher.embed_query(QUERIES[0]) - alone[0]).max() < 1e-5


def test_a_query_that_cannot_be_embedded_fails_alone_and_its_batch_is_answered(
        embedder: Embedder, alone: np.ndarray) -> None:
    """Four callers in one batch, one of them with a lone surrogate (which the API refuses
    with 422 before it gets here; the batcher must not depend on that)."""
    batcher = BatchingEmbedder(embedder, Batching(workers=0, max_batch=32))
    texts = [QUERIES[0], "\ud800 cell", QUERIES[1], QUERIES[2]]
    with ThreadPoolExecutor(len(texts)) as pool:
        calls = [pool.submit(batcher.embed_query, text) for text in texts]
        deadline = time.monotonic() + 30
        while batcher._waiting.qsize() < len(texts) and time.monotonic() < deadline:
            time.sleep(0.01)
        batcher.work_once()  # all four, in one batch
    assert batcher.batches == 1 and batcher.queries == 4
    with pytest.raises(TypeError):
        calls[1].result()
    for call, expected in zip([calls[0], calls[2], calls[3]], alone[:3], strict=True):
        assert np.abs(call.result() - expected).max() < 1e-5
