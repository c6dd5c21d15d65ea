"""Lexical retrieval: BM25 (SQLite FTS5) restricted to the allowed set inside the query."""

from __future__ import annotations

import threading
from collections.abc import Callable
from weakref import WeakKeyDictionary

from indexer.store import Generation
from search_api.access import AllowedSet

# Weights of the indexed columns (chunk text, document title, heading path) in bm25(). The
# title counts half a chunk's text: every chunk of a document then matches its title's words.
# SciFact train nDCG@10: lexical 0.680 / 0.687 / 0.688 at title weight 0 / 0.5 / 1, hybrid
# best at 0.5 (README "Quality"). Heading paths are already in the chunk's own text.
WEIGHTS = (1.0, 0.5, 0.0)

_members: WeakKeyDictionary[AllowedSet, Callable[[int], bool]] = WeakKeyDictionary()
_lock = threading.Lock()


def _membership(allowed: AllowedSet) -> Callable[[int], bool]:
    """A constant-time membership test SQLite calls per matching row.

    Allowed sets are cached per partner and day (search_api.access), so the hash set is built
    once per allowed set, not per query; it dies with the allowed set.
    """
    test = _members.get(allowed)
    if test is None:
        test = frozenset(allowed.ids.tolist()).__contains__
        with _lock:
            _members[allowed] = test
    return test


def lexical(generation: Generation, query: str, allowed: AllowedSet, k: int,
            weights: tuple[float, float, float] = WEIGHTS) -> list[tuple[int, float]]:
    """The k best chunks of `allowed` by BM25, best first: (chunk id, BM25 score)."""
    if len(allowed) == 0:
        return []
    return generation.lexical(query, _membership(allowed), k, weights)
