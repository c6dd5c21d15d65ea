"""Dense and lexical top k asked of every shard in one round (shards.py): on Ray a round costs a
call per shard, so a query costs one whatever its mode. A lexical question carries the summed
statistics of the whole allowed set, counted in this process before the round; hybrid search
asks its dense and lexical questions together.
"""

from __future__ import annotations

import numpy as np

from search_api.access.allowed import AllowedSet
from search_api.retrieval.fusion import Ranked
from search_api.retrieval.merge import merge_top_k
from search_api.retrieval.shards import DenseAnswer, Lexical, Question, Scoring, Shards


def retrieve(shards: Shards, allowed: AllowedSet, vector: np.ndarray | None = None,
             k: int = 0, lexical: Lexical | None = None) -> tuple[DenseAnswer, Ranked]:
    """The dense top `k` of `vector` and the lexical top k of `lexical` within `allowed`, each
    merged over the shards (empty where not asked)."""
    scoring = None if lexical is None else \
        Scoring(lexical, shards.lexical_stats(lexical.terms, allowed))
    answers = shards.ask(Question(vector, k, scoring), allowed)
    dense = DenseAnswer(merge_top_k([a.dense.ranked for a in answers if a.dense is not None], k),
                        any(a.dense.approximate for a in answers if a.dense is not None))
    return dense, [] if lexical is None else \
        merge_top_k([a.lexical for a in answers if a.lexical is not None], lexical.k)
