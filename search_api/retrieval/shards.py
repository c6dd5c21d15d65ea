"""The shards of the served generation, each asked the same question.

A round asks every shard one `Question` within the caller's allowed set: a dense top k, a BM25
top k scored with given statistics, or both (hybrid search). A local store, a shard in this
process and a shard served by Ray (search_api/cluster/) all answer it with `answer`; the caller
merges the answers (merge.py, rounds.py).

BM25 needs the statistics of the whole allowed set (N, the average length, each term's document
frequency), which no shard has alone: Elasticsearch's dfs_query_then_fetch asks every shard to
count them over its part in a round of their own, and scores with the sums in a second. Here the
counting is done in this process, over every shard's postings (`Shards.lexical_stats`: the same
code, on the same files, memory-mapped), and summed, so a lexical or hybrid query is one round
and each chunk gets the score the single index gives it. A generation that is not sharded is one
shard. The allowed set is always passed whole: each shard's store skips the ids it does not hold.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
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


@dataclass(frozen=True)
class Lexical:
    """What a lexical top k asks for: its terms, k and the columns' weights."""

    terms: tuple[str, ...]
    k: int
    weights: Weights


@dataclass(frozen=True)
class Scoring:
    """A BM25 top k within the allowed set, scored with the statistics of the whole set."""

    asked: Lexical
    stats: LexicalStats


@dataclass(frozen=True)
class Question:
    """What one round asks every shard: a dense top `k` of `vector`, a BM25 top k
    (`scoring`), or both."""

    vector: np.ndarray | None = None
    k: int = 0
    scoring: Scoring | None = None


@dataclass(frozen=True)
class Answer:
    """One shard's answer to each part of a question (None: not asked)."""

    dense: DenseAnswer | None = None
    lexical: Ranked | None = None


def answer(generation: Generation, question: Question, allowed: np.ndarray) -> Answer:
    """The question as one shard's store answers it (here, or inside a Ray replica)."""
    dense = None
    if question.vector is not None:
        hits, ran = generation.vectors.search_planned(question.vector, allowed, question.k)
        dense = DenseAnswer([(h.chunk_id, h.score) for h in hits], ran is Strategy.APPROXIMATE)
    scoring = question.scoring
    return Answer(dense, None if scoring is None else generation.lexical_search(
        scoring.asked.terms, allowed, scoring.asked.k, scoring.asked.weights, scoring.stats))


def load_postings(generation: Generation) -> None:
    """Every shard's postings loaded now, not by the first lexical query after a swap: the
    server counts the statistics over them (`counted`), wherever the shards answer."""
    for shard in generation.shards():
        shard.lexical_index()


def counted(generation: Generation, terms: Sequence[str], allowed: AllowedSet) -> LexicalStats:
    """BM25's statistics of `terms` over `allowed`, counted by every shard of `generation` over
    its part and summed: what each shard then scores with."""
    return reduce(operator.add, (shard.lexical_stats(terms, allowed.ids)
                                 for shard in generation.shards()), LexicalStats())


class Shards(Protocol):
    """Where the retrievers' questions go: every shard of one generation."""

    def ask(self, question: Question, allowed: AllowedSet) -> Sequence[Answer]:
        """Each shard's answer within `allowed`."""
        ...

    def lexical_stats(self, terms: Sequence[str], allowed: AllowedSet) -> LexicalStats:
        """The statistics of `terms` over `allowed`, summed over the shards (`counted`)."""
        ...

    def close(self) -> None:
        """Release what serving this generation holds (remote deployments)."""
        ...


class LocalShards:
    """The generation's shards opened in this process (the generation itself if unsharded)."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        load_postings(generation)

    def ask(self, question: Question, allowed: AllowedSet) -> list[Answer]:
        return [answer(shard, question, allowed.ids) for shard in self.generation.shards()]

    def lexical_stats(self, terms: Sequence[str], allowed: AllowedSet) -> LexicalStats:
        return counted(self.generation, terms, allowed)

    def close(self) -> None:
        return None
