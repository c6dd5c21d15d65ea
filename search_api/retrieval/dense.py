"""Dense retrieval: cosine similarity of the query's embedding within the allowed set, asked of
every shard and merged (one shard when the generation is not sharded)."""

from __future__ import annotations

import numpy as np

from search_api.access.allowed import AllowedSet
from search_api.retrieval.rounds import retrieve
from search_api.retrieval.shards import DenseAnswer, Shards


def dense(shards: Shards, query_vector: np.ndarray, allowed: AllowedSet, k: int) -> DenseAnswer:
    """The k chunks of `allowed` most similar to the query, best first: (chunk id, cosine);
    `approximate` when any shard answered from its IVF index."""
    if len(allowed) == 0 or k <= 0:
        return DenseAnswer([], False)
    return retrieve(shards, allowed, query_vector, k)[0]
