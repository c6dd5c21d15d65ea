"""Search: query text -> the caller's true top-k passages within its allowed set."""

from __future__ import annotations

import logging

from indexer.store import Passage
from search_api.access import AllowedSet
from search_api.live import LoadedIndex

log = logging.getLogger(__name__)


def search(index: LoadedIndex, query: str, allowed: AllowedSet,
           top_k: int) -> list[tuple[Passage, float]]:
    """Best passages first. `allowed` is required: the vector search runs restricted to it."""
    if len(allowed) == 0:
        return []
    vector = index.embedder.embed_query(query)
    hits = index.generation.vectors.search(vector, allowed.ids, top_k)
    passages = index.generation.passages([h.chunk_id for h in hits])
    results: list[tuple[Passage, float]] = []
    for hit in hits:
        if hit.chunk_id not in allowed:  # cannot happen with an in-index filter; never leak
            log.error("vector store returned chunk %s outside the allowed set", hit.chunk_id)
            continue
        passage = passages.get(hit.chunk_id)
        if passage is not None:
            results.append((passage, hit.score))
    return results
