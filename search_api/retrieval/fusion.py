"""Fusion: ranked lists of (chunk id, score) from several retrievers -> one ranked list.

Pure functions of their arguments: no index, no access check (every input list already lies
inside the caller's allowed set, so their union does too).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

Ranked = list[tuple[int, float]]

RRF_K = 60  # the constant of Cormack et al. (2009), used unchanged by most hybrid engines


def reciprocal_rank(lists: Sequence[Ranked], k: int = RRF_K) -> Ranked:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists that hold a chunk."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (chunk_id, _) in enumerate(ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def _arrays(ranked: Ranked) -> tuple[np.ndarray, np.ndarray]:
    """A ranked list as chunk ids (int64) and scores (float64), in its order."""
    if not ranked:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    ids, scores = zip(*ranked, strict=True)
    return np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float64)


def _normalised(scores: np.ndarray) -> np.ndarray:
    """Min-max over the list itself: its best -> 1, its last -> 0 (all 1 when scores tie)."""
    if scores.size == 0:
        return scores
    low = scores.min()
    span = scores.max() - low
    return (scores - low) / span if span > 0 else np.ones_like(scores)


def _ranked(ids: np.ndarray, scores: np.ndarray) -> Ranked:
    """Best first, ties by chunk id."""
    order = np.lexsort((ids, -scores))
    return list(zip(ids[order].tolist(), scores[order].tolist(), strict=True))


def _fused(lists: Sequence[Ranked], weights: Sequence[float]
           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Each list as arrays, and the union of their chunk ids with the weighted sum of their
    normalised scores (0 where a list lacks a chunk). numpy over the few hundred candidates of
    a query: the same additions in the same order as a loop over them, at a fraction of the
    CPU (docs/PERFORMANCE.md)."""
    if len(lists) != len(weights):
        raise ValueError(f"{len(lists)} lists but {len(weights)} weights")
    arrays = [_arrays(ranked) for ranked in lists]
    ids, where = np.unique(np.concatenate([i for i, _ in arrays] or [np.zeros(0, np.int64)]),
                           return_inverse=True)
    fused = np.zeros(ids.size, dtype=np.float64)
    at = 0
    for (chunk_ids, scores), weight in zip(arrays, weights, strict=True):
        fused[where[at:at + chunk_ids.size]] += weight * _normalised(scores)
        at += chunk_ids.size
    return arrays, ids, fused


def weighted_scores(lists: Sequence[Ranked], weights: Sequence[float]) -> Ranked:
    """Convex combination of min-max normalised scores; a chunk absent from a list gets 0 there.

    Unlike rank fusion it keeps how far ahead a hit is: a quoted sentence whose document
    leads BM25 by a wide margin stays first even when the embeddings cannot tell near-identical
    documents apart.
    """
    _, ids, fused = _fused(lists, weights)
    return _ranked(ids, fused)


def _numbers(documents: list[Hashable]) -> np.ndarray:
    """Documents as small numbers (equal numbers: the same document), for numpy: the server's
    are numbers already (retrieval/documents.py); other names are numbered in order."""
    found = np.array(documents)
    if found.dtype.kind == "i" and found.ndim == 1:
        return np.unique(found, return_inverse=True)[1]
    numbers: dict[Hashable, int] = {}
    return np.array([numbers.setdefault(d, len(numbers)) for d in documents], dtype=np.int64)


def _firsts(keys: np.ndarray) -> np.ndarray:
    """Positions of each key's first occurrence."""
    return np.unique(keys, return_index=True)[1]


def document_aware(lists: Sequence[Ranked], weights: Sequence[float],
                   doc_of: Mapping[int, Hashable]) -> Ranked:
    """`weighted_scores` of the chunks, where each document's best chunk is credited with its
    document's evidence from every retriever.

    Dense and lexical search often pick different chunks of the right document (the title's
    words in one, the answer in another); fused chunk by chunk, neither chunk gets both
    scores. Here each document's best fused chunk is scored at least the weighted sum of the
    document's best normalised score in each list; every other chunk keeps its own fused
    score, so passages stay passages and one long document does not crowd out the others.
    On SciFact's train split: 0.737 nDCG@10 against 0.729 chunk by chunk (docs/QUALITY.md).
    """
    arrays, ids, fused = _fused(lists, weights)
    doc = _numbers([doc_of[c] for c in ids.tolist()])
    by_doc = np.zeros(int(doc.max()) + 1 if doc.size else 0, dtype=np.float64)
    for (chunk_ids, scores), weight in zip(arrays, weights, strict=True):
        docs = doc[np.searchsorted(ids, chunk_ids)]
        best = _firsts(docs)  # a list is best first: a document's first chunk is its best
        by_doc[docs[best]] += weight * _normalised(scores[best])
    order = np.lexsort((ids, -fused))  # best first: the first chunk of a document is its best
    ids, fused, doc = ids[order], fused[order], doc[order]
    credited = _firsts(doc)
    fused[credited] = np.maximum(fused[credited], by_doc[doc[credited]])
    return _ranked(ids, fused)
