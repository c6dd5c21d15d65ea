"""The shards of the served generation, each asked the same question.

"Top k of this query within this allowed set" is what a local store, a shard in this process
and a shard served by Ray (search_api/cluster/) all answer; the caller merges the answers
(merge.py). A generation that is not sharded is one shard. The allowed set is always passed
whole: each shard's store skips the ids it does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from indexer.store.planner import Strategy
from indexer.store.reader import Generation
from search_api.access import AllowedSet
from search_api.retrieval.fusion import Ranked


@dataclass(frozen=True)
class DenseAnswer:
    """One shard's dense top k, and whether it came from the approximate plan (for the audit
    and the metrics; never shown to the caller)."""

    ranked: Ranked
    approximate: bool


def shard_dense(generation: Generation, vector: np.ndarray, allowed: np.ndarray,
                k: int) -> DenseAnswer:
    """The question as one shard's store answers it (here, or inside a Ray replica)."""
    hits, ran = generation.vectors.search_planned(vector, allowed, k)
    return DenseAnswer([(h.chunk_id, h.score) for h in hits], ran is Strategy.APPROXIMATE)


class Shards(Protocol):
    """Where the dense retriever's question goes: every shard of one generation."""

    def dense(self, vector: np.ndarray, allowed: AllowedSet, k: int) -> Sequence[DenseAnswer]:
        """Each shard's top k within `allowed`."""
        ...

    def close(self) -> None:
        """Release what serving this generation holds (remote deployments)."""
        ...


class LocalShards:
    """The generation's shards opened in this process (the generation itself if unsharded)."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation

    def dense(self, vector: np.ndarray, allowed: AllowedSet, k: int) -> list[DenseAnswer]:
        return [shard_dense(shard, vector, allowed.ids, k) for shard in self.generation.shards()]

    def close(self) -> None:
        return None
