"""BM25 over the chunks a caller may see, with statistics of exactly those chunks.

FTS5's own `bm25()` counts every row of the table (N, each term's document frequency, the
average length), so the scores and the order a partner got were shaped by documents it may not
see, and could be used to count them (docs/ACCESS.md). Here the same formula is computed from
the generation's postings (exported from FTS5 when the generation was written: lexical.py), with
statistics the caller passes in:

- `stats(tokens, allowed)`: N (allowed chunks), their total length in tokens and each token's
  document frequency among them, as a `LexicalStats`. Stats add up (`a + b`), so several shards
  can each count their part and every shard then scores with the sum (Elasticsearch's
  dfs_query_then_fetch).
- `search(tokens, allowed, k, weights, stats)`: the true top-k of the allowed chunks.

The formula is FTS5's (sqlite/ext/fts5/fts5_aux.c): k1 = 1.2, b = 0.75; a term's idf is
log((N - n + 0.5) / (n + 0.5)), at least 1e-6; its frequency in a chunk is the column-weighted
count of its occurrences; the chunk's length and the average length count every column. With
the whole index allowed, scores equal FTS5's `bm25()` (tests/indexer/store/test_bm25.py).
"""

from __future__ import annotations

import math
import threading
import weakref
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from indexer.store.npz_map import map_npz

K1 = 1.2
B = 0.75
MIN_IDF = 1e-6  # FTS5's floor for terms in more than half of the chunks


@dataclass(frozen=True)
class LexicalStats:
    """What BM25 needs to know about a set of chunks; adds up across disjoint sets (shards)."""

    chunks: int = 0  # N
    tokens: int = 0  # total length of those chunks, every column, in tokens
    frequencies: dict[str, int] = field(default_factory=dict)  # token -> chunks holding it

    def __add__(self, other: LexicalStats) -> LexicalStats:
        merged = dict(self.frequencies)
        for token, count in other.frequencies.items():
            merged[token] = merged.get(token, 0) + count
        return LexicalStats(self.chunks + other.chunks, self.tokens + other.tokens, merged)

    def idf(self, token: str) -> float:
        hits = self.frequencies.get(token, 0)
        value = math.log((self.chunks - hits + 0.5) / (hits + 0.5))
        return value if value > 0 else MIN_IDF


class _Terms(Sequence[bytes]):
    """The sorted vocabulary as one UTF-8 blob and offsets: bisect finds a term in it without a
    dict of every term in memory."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob, self._offsets = blob, offsets
        # Queries repeat their words: the recent ones' places are kept (a bounded memory), so
        # the bisect's twenty-odd slices of the blob run once per word, not twice per query.
        self.find = lru_cache(maxsize=16384)(self._find)  # type: ignore[method-assign]

    def __len__(self) -> int:
        return int(self._offsets.size) - 1

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes()

    def find(self, token: str) -> int | None:
        """The term's number in the vocabulary, None when no chunk holds it."""
        return self._find(token)

    def _find(self, token: str) -> int | None:
        key = token.encode("utf-8")
        i = bisect_left(self, key)
        return i if i < len(self) and self[i] == key else None


@dataclass(frozen=True)
class _Selection:
    """An allowed set as runs of consecutive rows [starts, ends), with its N and total length.
    Rows are in the order of access rules, so a partner's set is a few runs."""

    starts: np.ndarray
    ends: np.ndarray
    chunks: int
    tokens: int


class Postings:
    """Every token's postings: the chunks holding it (as rows of `chunk_ids`) and how often, per
    column. The CSC layout of a sparse chunks x terms matrix, one count column per FTS5 column.
    """

    ARRAYS = ("chunk_ids", "lengths", "terms", "term_offsets", "starts", "rows", "counts")

    def __init__(self, chunk_ids: np.ndarray, lengths: np.ndarray, terms: np.ndarray,
                 term_offsets: np.ndarray, starts: np.ndarray, rows: np.ndarray,
                 counts: np.ndarray) -> None:
        self.chunk_ids = chunk_ids        # int64: row r is chunk chunk_ids[r] (by access rule)
        self.lengths = lengths            # int64 per row: tokens in every column
        self.terms = _Terms(terms, term_offsets)
        self.starts = starts              # int64 per term + 1: its postings in rows/counts
        self.rows = rows                  # int32 per posting, sorted within a term
        self.counts = counts              # uint16 per posting and column
        self._by_id = np.argsort(chunk_ids)  # rows in chunk id order, to find an id's row
        self._sorted_ids = chunk_ids[self._by_id]
        self._selections: dict[int, tuple[weakref.ref[np.ndarray], _Selection]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> Postings:
        """Memory-mapped (npz_map.py): a host's server processes share one copy."""
        if (mapped := map_npz(path)) is not None:
            return cls(*(mapped[name] for name in cls.ARRAYS))
        with np.load(path) as data:
            return cls(*(data[name] for name in cls.ARRAYS))

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:  # np.savez would add '.npz' to a bare path
            np.savez(handle, chunk_ids=self.chunk_ids, lengths=self.lengths,
                     terms=self.terms._blob, term_offsets=self.terms._offsets,
                     starts=self.starts, rows=self.rows, counts=self.counts)

    def stats(self, tokens: Sequence[str], allowed: np.ndarray) -> LexicalStats:
        """N, total length and each token's document frequency within the sorted chunk ids
        `allowed`."""
        chosen = self._selection(allowed)
        frequencies = {}
        for token in dict.fromkeys(tokens):
            frequencies[token] = self._count(token, chosen)
        return LexicalStats(chosen.chunks, chosen.tokens, frequencies)

    def search(self, tokens: Sequence[str], allowed: np.ndarray, k: int,
               weights: Sequence[float], stats: LexicalStats) -> list[tuple[int, float]]:
        """The k best chunks of `allowed` holding any token, scored with `stats`: (chunk id,
        score), best first, ties by chunk id. A token given twice counts twice, as a term
        repeated in an FTS5 query does."""
        if k <= 0 or stats.chunks <= 0 or allowed.size == 0:
            return []
        chosen = self._selection(allowed)
        average = stats.tokens / stats.chunks
        weight = np.asarray(weights, dtype=np.float64)
        if weight.shape != (self.counts.shape[1],):
            raise ValueError(f"{len(weights)} weights for {self.counts.shape[1]} columns")
        found_rows, found_scores = [], []
        for token, times in Counter(tokens).items():
            rows, counts = self._postings(token, chosen)
            if rows.size == 0:
                continue
            freq = counts @ weight
            ratio = self.lengths[rows] / average if average > 0 else 0.0
            found_rows.append(rows)
            found_scores.append(times * stats.idf(token) * (freq * (K1 + 1))
                                / (freq + K1 * (1 - B + B * ratio)))
        if not found_rows:
            return []
        rows, where = np.unique(np.concatenate(found_rows), return_inverse=True)
        scores = np.bincount(where, weights=np.concatenate(found_scores))
        ids = self.chunk_ids[rows]
        if scores.size > k:  # everything tied with the k-th best, then ties by chunk id
            kth = np.partition(scores, scores.size - k)[scores.size - k]
            keep = scores >= kth
            ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _count(self, token: str, chosen: _Selection) -> int:
        """How many chunks of the selection hold `token`: its postings in the selection's runs,
        counted by binary search without gathering them (the statistics need only the count)."""
        term = self.terms.find(token)
        if term is None:
            return 0
        rows = self.rows[int(self.starts[term]):int(self.starts[term + 1])]
        return int((rows.searchsorted(chosen.ends) - rows.searchsorted(chosen.starts)).sum())

    def _postings(self, token: str, chosen: _Selection) -> tuple[np.ndarray, np.ndarray]:
        """Rows and per-column counts of `token` within the selection. Only the selection's
        runs are read (found by binary search in the term's postings, which are by row), so the
        work is that of the visible postings, whatever hidden chunks hold the term."""
        term = self.terms.find(token)
        if term is None:
            return np.zeros(0, dtype=np.int32), np.zeros((0, self.counts.shape[1]), np.uint16)
        first, last = int(self.starts[term]), int(self.starts[term + 1])
        rows = self.rows[first:last]
        low = first + np.searchsorted(rows, chosen.starts)
        taken = first + np.searchsorted(rows, chosen.ends) - low
        total = int(taken.sum())
        at = np.repeat(low - np.cumsum(taken) + taken, taken) + np.arange(total)
        return self.rows[at], self.counts[at]

    def _selection(self, allowed: np.ndarray) -> _Selection:
        """The allowed set as runs of rows, kept for as long as the array lives: the server
        caches each partner's set per day, so it is mapped once, not per query."""
        key = id(allowed)
        cached = self._selections.get(key)
        if cached is not None and cached[0]() is allowed:
            return cached[1]
        at = np.searchsorted(self._sorted_ids, allowed)
        inside = at < self._sorted_ids.size
        at = at[inside]
        at = at[self._sorted_ids[at] == allowed[inside]]  # ids of another generation: no rows
        rows = np.sort(self._by_id[at])
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        chosen = _Selection(rows[np.r_[0, breaks]] if rows.size else rows,
                            rows[np.r_[breaks - 1, rows.size - 1]] + 1 if rows.size else rows,
                            int(rows.size), int(self.lengths[rows].sum()))
        with self._lock:
            self._selections[key] = (weakref.ref(allowed), chosen)
        weakref.finalize(allowed, self._forget, key)
        return chosen

    def _forget(self, key: int) -> None:
        with self._lock:
            self._selections.pop(key, None)
