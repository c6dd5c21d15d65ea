"""The shards of the served generation, each asked the same questions.

"Top k of this query within this allowed set, with these statistics" is what a local store, a
shard in this process and a shard served by Ray (search_api/cluster/) all answer; the caller
merges the answers (merge.py). Lexical search takes two rounds, as Elasticsearch's
dfs_query_then_fetch: every shard counts BM25's statistics over its part of the allowed set,
the counts are summed, and every shard scores with the totals, so each chunk gets the score the
single index gives it. A generation that is not sharded is one shard. The allowed set is always
passed whole: each shard's store skips the ids it does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from indexer.store.bm25 import LexicalStats
from indexer.store.planner import Strategy
from indexer.store.reader import Generation
from search_api.access.allowed import AllowedSet
from search_api.retrieval.fusion import Ranked


@dataclass(frozen=True)
class DenseAnswer:
    """One shard's dense top k, and whether it came from the approximate plan (for the audit
    and the metrics; never shown to the caller)."""

    ranked: Ranked
    approximate: bool


Weights = tuple[float, float, float]


def shard_dense(generation: Generation, vector: np.ndarray, allowed: np.ndarray,
                k: int) -> DenseAnswer:
    """The question as one shard's store answers it (here, or inside a Ray replica)."""
    hits, ran = generation.vectors.search_planned(vector, allowed, k)
    return DenseAnswer([(h.chunk_id, h.score) for h in hits], ran is Strategy.APPROXIMATE)


class Shards(Protocol):
    """Where the retrievers' questions go: every shard of one generation."""

    def dense(self, vector: np.ndarray, allowed: AllowedSet, k: int) -> Sequence[DenseAnswer]:
        """Each shard's top k within `allowed`."""
        ...

    def lexical_stats(self, terms: list[str], allowed: AllowedSet) -> Sequence[LexicalStats]:
        """Each shard's BM25 statistics over its part of `allowed`."""
        ...

    def lexical_search(self, terms: list[str], allowed: AllowedSet, k: int, weights: Weights,
                       stats: LexicalStats) -> Sequence[Ranked]:
        """Each shard's BM25 top k within `allowed`, scored with `stats`."""
        ...

    def close(self) -> None:
        """Release what serving this generation holds (remote deployments)."""
        ...


class LocalShards:
    """The generation's shards opened in this process (the generation itself if unsharded)."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        for shard in generation.shards():
            shard.lexical_index()  # loaded now, not by the first lexical query after a swap

    def dense(self, vector: np.ndarray, allowed: AllowedSet, k: int) -> list[DenseAnswer]:
        return [shard_dense(shard, vector, allowed.ids, k) for shard in self.generation.shards()]

    def lexical_stats(self, terms: list[str], allowed: AllowedSet) -> list[LexicalStats]:
        return [shard.lexical_stats(terms, allowed.ids) for shard in self.generation.shards()]

    def lexical_search(self, terms: list[str], allowed: AllowedSet, k: int, weights: Weights,
                       stats: LexicalStats) -> list[Ranked]:
        return [shard.lexical_search(terms, allowed.ids, k, weights, stats)
                for shard in self.generation.shards()]

    def close(self) -> None:
        return None
