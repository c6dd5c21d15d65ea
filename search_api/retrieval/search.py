"""Search: query text -> the caller's true top-k passages within its allowed set.

One query: allowed set -> retrievers (dense, lexical), each restricted to the set inside its own
search -> fusion -> passages, each citing the page of its best match (citing.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from indexer.store.records import Passage
from search_api.access.allowed import AllowedSet
from search_api.retrieval.citing import cite
from search_api.retrieval.dense import dense
from search_api.retrieval.fusion import Ranked, document_aware
from search_api.retrieval.lexical import asked, lexical
from search_api.retrieval.live import LoadedIndex
from search_api.retrieval.rounds import retrieve

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "lexical"]
# Chunks each retriever hands to the fusion, at least: on SciFact's train split 200 gave 0.737
# nDCG@10, 100 gave 0.735, 300 0.738 (docs/QUALITY.md).
CANDIDATES = 200
# Dense and lexical count alike after min-max normalisation: on SciFact's train split 0.5 is
# within 0.003 of the best weight (docs/QUALITY.md), and an even split assumes nothing about
# which retriever suits an unseen corpus.
WEIGHTS = (0.5, 0.5)


@dataclass(frozen=True)
class Found:
    """Best passages first, and how the dense retriever read the vectors: for the audit and the
    metrics, never for the caller (an answer looks the same whichever plan ran)."""

    results: list[tuple[Passage, float]]
    approximate: bool | None = None  # None: no dense search ran (lexical, or nothing visible)


def search(index: LoadedIndex, query: str, allowed: AllowedSet, top_k: int,
           mode: Mode = "hybrid") -> Found:
    """Best passages first. `allowed` is required: every retriever searches only inside it."""
    if len(allowed) == 0:
        return Found([])
    ranked, approximate = _retrieve(index, query, allowed, top_k, mode)
    ranked = ranked[:top_k]
    passages = cite(index.generation.analyzer(), query,
                    index.generation.passages([chunk_id for chunk_id, _ in ranked]))
    results: list[tuple[Passage, float]] = []
    for chunk_id, score in ranked:
        if chunk_id not in allowed:  # cannot happen with in-index filters; never leak
            log.error("retrieval returned chunk %s outside the allowed set", chunk_id)
            continue
        passage = passages.get(chunk_id)
        if passage is not None:
            results.append((passage, score))
    return Found(results, approximate)


def _retrieve(index: LoadedIndex, query: str, allowed: AllowedSet, top_k: int,
              mode: Mode) -> tuple[Ranked, bool | None]:
    if mode == "lexical":
        return lexical(index.shards, query, allowed, top_k), None
    vector = index.embedder.embed_query(query)
    if mode == "dense":
        answer = dense(index.shards, vector, allowed, top_k)
        return answer.ranked, answer.approximate
    depth = max(top_k, CANDIDATES)
    # Both retrievers in the same rounds (rounds.py): on Ray, one or two instead of three.
    answer, ranked = retrieve(index.shards, allowed, vector, depth, asked(query, depth))
    lists = [answer.ranked, ranked]
    doc_of = index.documents({c for ranked in lists for c, _ in ranked})
    return document_aware(lists, WEIGHTS, doc_of), answer.approximate
