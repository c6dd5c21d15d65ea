"""Dense retrieval: cosine similarity of the query's embedding, exact within the allowed set."""

from __future__ import annotations

import numpy as np

from indexer.store.vectors import VectorStore
from search_api.access import AllowedSet


def dense(vectors: VectorStore, query_vector: np.ndarray, allowed: AllowedSet,
          k: int) -> list[tuple[int, float]]:
    """The k chunks of `allowed` most similar to the query, best first: (chunk id, cosine)."""
    if len(allowed) == 0:
        return []
    return [(hit.chunk_id, hit.score) for hit in vectors.search(query_vector, allowed.ids, k)]
