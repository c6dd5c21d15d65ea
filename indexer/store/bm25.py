"""BM25 over the chunks a caller may see, with statistics of exactly those chunks, reading only
the postings of the access groups it may see.

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

The postings are partitioned by access group: rows are ordered by access rule (layout.BY_RULE),
each rule's rows are one group, and each (group, term) has a list of its own. A request looks
its tokens up in the vocabulary (vocabulary.py: the same steps whether a token is there or not),
then probes exactly the (group, term) keys of the groups its allowed set covers, and reads only
the lists it finds there. A term held only by hidden chunks and a term held by none cost the
same: the same lookups, the same probes, nothing found (tests/search_api/retrieval/test_work.py
counts them). A covered group's document frequency is its list's length, read without its
postings.

The formula is FTS5's (sqlite/ext/fts5/fts5_aux.c): k1 = 1.2, b = 0.75; a term's idf is
log((N - n + 0.5) / (n + 0.5)), at least 1e-6; its frequency in a chunk is the column-weighted
count of its occurrences; the chunk's length and the average length count every column. With
the whole index allowed, scores equal FTS5's `bm25()` (tests/indexer/store/test_bm25.py).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.store.npz_map import map_npz
from indexer.store.vocabulary import Vocabulary
from indexer.store.work import tally

K1 = 1.2
B = 0.75
MIN_IDF = 1e-6  # FTS5's floor for terms in more than half of the chunks
GROUP_SHIFT = 32  # a list's key: group << 32 | term


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


@dataclass(frozen=True)
class _Selection:
    """An allowed set as runs of consecutive rows [starts, ends), none crossing a group's
    border; the groups it covers, whether wholly, and where each group's runs are."""

    starts: np.ndarray
    ends: np.ndarray
    groups: np.ndarray     # covered group numbers, ascending
    whole: np.ndarray      # per covered group: every row of it is allowed
    first_run: np.ndarray  # group i's runs are [first_run[i], first_run[i + 1])
    chunks: int
    tokens: int


@dataclass(frozen=True)
class _Found:
    """The lists a query's tokens have in the covered groups: per list, its token's place in
    the query, its group's place in the selection, and its number."""

    token: np.ndarray
    group: np.ndarray
    lists: np.ndarray


def _ranges(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Every position of the ranges [low, high), in order."""
    taken = high - low
    return np.repeat(low - np.cumsum(taken) + taken, taken) + np.arange(int(taken.sum()))


class Postings:
    """Every (access group, term)'s postings: the chunks holding the term (as rows of
    `chunk_ids`, ascending) and how often, per column; lists ordered by group, then term."""

    ARRAYS = ("chunk_ids", "lengths", *Vocabulary.ARRAYS, "group_rows", "list_keys",
              "list_starts", "rows", "counts")

    def __init__(self, chunk_ids: np.ndarray, lengths: np.ndarray, vocabulary: Vocabulary,
                 group_rows: np.ndarray, list_keys: np.ndarray, list_starts: np.ndarray,
                 rows: np.ndarray, counts: np.ndarray) -> None:
        self.chunk_ids = chunk_ids        # int64: row r is chunk chunk_ids[r] (by access rule)
        self.lengths = lengths            # int64 per row: tokens in every column
        self.vocabulary = vocabulary
        self.group_rows = group_rows      # int64, groups + 1: group g is rows [g_rows[g], ..)
        self.list_keys = list_keys        # int64 per list, ascending: group << 32 | term
        self.list_starts = list_starts    # int64 per list + 1: its postings in rows/counts
        self.rows = rows                  # int32 per posting, ascending within a list
        self.counts = counts              # uint16 per posting and column
        self._by_id = np.argsort(chunk_ids)  # rows in chunk id order, to find an id's row
        self._sorted_ids = chunk_ids[self._by_id]
        self._selections: dict[int, tuple[weakref.ref[np.ndarray], _Selection]] = {}
        self._lock = threading.Lock()

    @classmethod
    def partition(cls, chunk_ids: np.ndarray, lengths: np.ndarray, terms: np.ndarray,
                  term_offsets: np.ndarray, starts: np.ndarray, rows: np.ndarray,
                  counts: np.ndarray, group_rows: np.ndarray) -> Postings:
        """Term-major postings (term i's are [starts[i], starts[i + 1]), by row) split into
        one list per (group, term), groups being the row ranges of `group_rows`."""
        term_of = np.repeat(np.arange(starts.size - 1, dtype=np.int64), np.diff(starts))
        group_of = np.searchsorted(group_rows, rows, side="right").astype(np.int64) - 1
        order = np.argsort(group_of, kind="stable")  # each group keeps (term, row) order
        keys = (group_of[order] << GROUP_SHIFT) | term_of[order]
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else \
            np.zeros(0, np.int64)
        return cls(chunk_ids, lengths, Vocabulary.build(terms, term_offsets),
                   np.asarray(group_rows, dtype=np.int64), keys[first],
                   np.r_[first, keys.size].astype(np.int64), rows[order], counts[order])

    @classmethod
    def load(cls, path: Path,
             groups_of: Callable[[int], np.ndarray] | None = None) -> Postings:
        """Memory-mapped (npz_map.py): a host's server processes share one copy. Postings
        written before they were partitioned (2026-12) are partitioned here, in this process,
        by `groups_of(rows)` (the generation's groups: lexical.group_rows; one without it)."""
        arrays = map_npz(path)
        if arrays is None:
            with np.load(path) as data:
                arrays = {name: data[name] for name in data.files}
        if "list_keys" in arrays:
            vocabulary = Vocabulary(*(arrays[name] for name in Vocabulary.ARRAYS))
            return cls(arrays["chunk_ids"], arrays["lengths"], vocabulary,
                       *(arrays[name] for name in cls.ARRAYS[2 + len(Vocabulary.ARRAYS):]))
        rows = arrays["chunk_ids"].size
        return cls.partition(arrays["chunk_ids"], arrays["lengths"], arrays["terms"],
                             arrays["term_offsets"], arrays["starts"], arrays["rows"],
                             arrays["counts"],
                             np.array([0, rows]) if groups_of is None else groups_of(rows))

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:  # np.savez would add '.npz' to a bare path
            arrays: dict[str, np.ndarray] = {
                "chunk_ids": self.chunk_ids, "lengths": self.lengths, **self.vocabulary.arrays(),
                "group_rows": self.group_rows, "list_keys": self.list_keys,
                "list_starts": self.list_starts, "rows": self.rows, "counts": self.counts}
            np.savez(handle, **arrays)  # type: ignore[arg-type]

    def stats(self, tokens: Sequence[str], allowed: np.ndarray) -> LexicalStats:
        """N, total length and each token's document frequency within the sorted chunk ids
        `allowed`: a wholly covered group adds its list's length, a partly covered one (a
        folder filter) the postings of its runs, counted by binary search."""
        chosen = self._selection(allowed)
        unique = list(dict.fromkeys(tokens))
        found = self._find(unique, chosen)
        whole = chosen.whole[found.group]
        sizes = self.list_starts[found.lists + 1] - self.list_starts[found.lists]
        frequencies = np.bincount(found.token[whole], weights=sizes[whole],
                                  minlength=len(unique)).astype(np.int64)
        for token, group, number in zip(found.token[~whole].tolist(),
                                        found.group[~whole].tolist(),
                                        found.lists[~whole].tolist(), strict=True):
            low, high = self._within_runs(number, group, chosen)
            frequencies[token] += int((high - low).sum())
        return LexicalStats(chosen.chunks, chosen.tokens,
                            dict(zip(unique, frequencies.tolist(), strict=True)))

    def search(self, tokens: Sequence[str], allowed: np.ndarray, k: int,
               weights: Sequence[float], stats: LexicalStats) -> list[tuple[int, float]]:
        """The k best chunks of `allowed` holding any token, scored with `stats`: (chunk id,
        score), best first, ties by chunk id. A token given twice counts twice, as a term
        repeated in an FTS5 query does."""
        if k <= 0 or stats.chunks <= 0 or allowed.size == 0:
            return []
        chosen = self._selection(allowed)
        weight = np.asarray(weights, dtype=np.float64)
        if weight.shape != (self.counts.shape[1],):
            raise ValueError(f"{len(weights)} weights for {self.counts.shape[1]} columns")
        times = Counter(tokens)
        unique = list(times)
        found = self._find(unique, chosen)
        if found.lists.size == 0:
            return []
        low, high, token_of = self._ranges_of(found, chosen)
        at = _ranges(low, high)
        tally(postings=int(at.size))
        rows = self.rows[at]
        freq = self.counts[at] @ weight
        average = stats.tokens / stats.chunks
        ratio = self.lengths[rows] / average if average > 0 else 0.0
        factor = np.array([times[t] * stats.idf(t) for t in unique])
        per_posting = np.repeat(factor[token_of], high - low)
        scores_of = per_posting * (freq * (K1 + 1)) / (freq + K1 * (1 - B + B * ratio))
        hit_rows, where = np.unique(rows, return_inverse=True)
        scores = np.bincount(where, weights=scores_of)
        ids = self.chunk_ids[hit_rows]
        if scores.size > k:  # everything tied with the k-th best, then ties by chunk id
            kth = np.partition(scores, scores.size - k)[scores.size - k]
            keep = scores >= kth
            ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _find(self, tokens: list[str], chosen: _Selection) -> _Found:
        """The lists of `tokens` in the groups `chosen` covers, token-major: every token is
        looked up, and every (covered group, token) key probed, whether or not it is there."""
        candidates, known = self.vocabulary.lookup(tokens)
        keys = ((chosen.groups[:, None] << GROUP_SHIFT) | candidates[None, :]).ravel()
        tally(probes=int(keys.size))
        if self.list_keys.size == 0 or keys.size == 0:
            none = np.zeros(0, dtype=np.int64)
            return _Found(none, none, none)
        at = np.minimum(np.searchsorted(self.list_keys, keys), self.list_keys.size - 1)
        hit = (self.list_keys[at] == keys) & np.tile(known, chosen.groups.size)
        flat = np.flatnonzero(hit)
        tally(lists=int(flat.size))
        token, group = flat % len(tokens), flat // len(tokens)
        order = np.argsort(token, kind="stable")  # by token, then group (= row order)
        return _Found(token[order], group[order], at[flat][order])

    def _ranges_of(self, found: _Found, chosen: _Selection
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The postings of the found lists within the selection, as ranges [low, high) with
        each range's token, token-major: a wholly covered group's list is one range (no
        search), a partly covered one's a range per run."""
        whole = chosen.whole[found.group]
        if whole.all():
            return (self.list_starts[found.lists], self.list_starts[found.lists + 1],
                    found.token)
        lows, highs, tokens = [], [], []
        for token, group, number in zip(found.token.tolist(), found.group.tolist(),
                                        found.lists.tolist(), strict=True):
            low, high = self._within_runs(number, group, chosen)
            lows.append(low)
            highs.append(high)
            tokens.append(np.full(low.size, token))
        return np.concatenate(lows), np.concatenate(highs), np.concatenate(tokens)

    def _within_runs(self, number: int, group: int,
                     chosen: _Selection) -> tuple[np.ndarray, np.ndarray]:
        """Where list `number` (of the selection's `group`-th group) meets the selection:
        the whole list for a wholly covered group, else one range per run of the group."""
        first, last = int(self.list_starts[number]), int(self.list_starts[number + 1])
        if chosen.whole[group]:
            return np.array([first]), np.array([last])
        runs = slice(int(chosen.first_run[group]), int(chosen.first_run[group + 1]))
        rows = self.rows[first:last]
        return (first + np.searchsorted(rows, chosen.starts[runs]),
                first + np.searchsorted(rows, chosen.ends[runs]))

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
        group = np.searchsorted(self.group_rows, rows, side="right") - 1
        first = np.flatnonzero(np.r_[True, (np.diff(rows) != 1) | (np.diff(group) != 0)]) \
            if rows.size else np.zeros(0, np.int64)
        starts, ends = rows[first], rows[np.r_[first[1:] - 1, rows.size - 1]] + 1 \
            if rows.size else rows
        run_group = group[first]
        groups, first_run = np.unique(run_group, return_index=True)
        first_run = np.r_[first_run, run_group.size].astype(np.int64)
        covered = np.add.reduceat(ends - starts, first_run[:-1]) if groups.size else starts
        whole = covered == np.diff(self.group_rows)[groups] if groups.size else \
            np.zeros(0, dtype=bool)
        chosen = _Selection(starts, ends, groups.astype(np.int64), whole, first_run,
                            int(rows.size), int(self.lengths[rows].sum()))
        with self._lock:
            self._selections[key] = (weakref.ref(allowed), chosen)
        weakref.finalize(allowed, self._forget, key)
        return chosen

    def _forget(self, key: int) -> None:
        with self._lock:
            self._selections.pop(key, None)
