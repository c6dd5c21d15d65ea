"""The merge of several shards' answers to one question: a pure function, like fusion.py.

Every shard answers "top k of this query within this allowed set" over its own documents, and
the shards hold disjoint documents, so the global top k is among the union of the per-shard
top k. Ranked best first, ties by chunk id: the order one index gives (indexer/store/planner.py
`top_k`, and FTS5's ORDER BY score DESC, rowid).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from search_api.retrieval.fusion import Ranked


def merge_top_k(lists: Sequence[Ranked], k: int) -> Ranked:
    """The k best (chunk id, score) pairs of several ranked lists of disjoint chunks."""
    if k <= 0:
        return []
    if len(lists) == 1:  # one shard (every unsharded generation): its answer is that order
        return list(lists[0][:k])
    return heapq.nsmallest(k, (pair for ranked in lists for pair in ranked),
                           key=lambda pair: (-pair[1], pair[0]))
