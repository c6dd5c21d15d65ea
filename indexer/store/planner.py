"""The filtered-search planner: decides HOW to scan a caller's allowed rows, never WHETHER.

Every plan scores exactly the allowed rows and nothing else, so every plan gives the exact top-k
within the allowed set; they differ only in how the bytes are read. One query reads each vector
it scores once, and memory bandwidth is the limit, so the cost of a plan is the bytes it reads
and the calls it makes:

- SCAN: one pass over the whole matrix (sequential, the fastest bytes), then keep the allowed
  rows' scores. Chosen for the whole index, or when the allowed rows are most of a small index.
- RANGES: one sequential pass per contiguous run of allowed rows. The index lays a partner's
  chunks out together (rows ordered by access rule, then document), so a partner's rows are a
  few runs and its search costs what it may see, not what the index holds.
- ROWS: score the allowed rows by position (a gather; slower per row than a sequential pass,
  but reads only what is allowed). Chosen for rows scattered across the index.
- APPROXIMATE: the generation's IVF index (ann.py), searched with the allowed rows as its ID
  selector and re-scored exactly: its cost is the lists it probes (a share of the index that
  recall on real embeddings sets, ann.py), not the whole allowed set. It is
  the one plan that is not exact, so it is chosen only where every exact plan would cost more
  than EXACT_BUDGET_US (a third of the 60 ms goal; then recall 1.0 costs little) and more than
  it: broad allowed sets of a large index. A narrow set (under NARROW_SHARE of the index), where
  the IVF's recall falls, stays exact up to the whole goal. Generations without an IVF keep the
  exact plans.

The constants are per-row and per-call costs measured on the reference machine (2 cores,
faiss 1.15 SIMD kernels, 384-d float32); only their ratios matter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

SEQ_US_PER_ROW = 0.075  # sequential pass, one 1.5 kB row
GATHER_US_PER_ROW = 0.25  # by position, rows scattered
CALL_US = 3.0  # one kernel call from Python (per run)
# The approximate plan: a fixed cost per search (the coarse quantiser's scan of the centroids is
# counted as sequential rows), a test of the selector per entry of each probed list (reading
# the list), and an 8-bit code scored per allowed entry; then `depth` rows re-scored by position.
# Fitted to the query thread's CPU time in benchmarks/filtered_search.py at 4M (whole index,
# 30 % and 10 % contiguous: 2.22, 1.35, 1.42 ms); they predict the 1M run's 1.44 ms within 25 %.
ANN_CALL_US = 40.0
ANN_ENTRY_US = 0.026
ANN_CODE_US = 0.036
EXACT_BUDGET_US = 20_000.0
# A narrow set (under 2 % of the index) is kept exact up to the whole 60 ms goal: its nearest
# allowed neighbours lie far out in the IVF's lists, and at 10M chunks 1 % scattered gave
# recall@10 0.883 probing 16 lists and 0.94 probing lists that held 5,000 of its entries
# (benchmarks/filtered_search.py, 16-core Xeon), where 10 % scattered gave 0.998.
NARROW_SHARE = 0.02
NARROW_EXACT_BUDGET_US = 60_000.0


class Strategy(Enum):
    EMPTY = "empty"
    SCAN = "scan"
    RANGES = "ranges"
    ROWS = "rows"
    APPROXIMATE = "approximate"


@dataclass(frozen=True, eq=False)
class Approximate:
    """What the planner needs to know of an IVF search of one allowed set (ann.py): the
    index's lists (their centroids are scored for every query), the entries of the lists it
    probes (each tested against the selector), the allowed codes among them (scored), the
    candidates it re-scores, and the allowed entries of each list, which guide the search."""

    lists: int
    scanned: float
    codes: float
    depth: int
    per_list: np.ndarray | None = None

    def cost_us(self) -> float:
        return (ANN_CALL_US + self.lists * SEQ_US_PER_ROW + self.scanned * ANN_ENTRY_US
                + self.codes * ANN_CODE_US + self.depth * GATHER_US_PER_ROW)


@dataclass(frozen=True, eq=False)
class Plan:
    """How to score one allowed set; `rows` are the allowed row positions, sorted."""

    strategy: Strategy
    rows: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    total: int  # rows in the whole index
    approximate: Approximate | None = None  # the IVF search's guide, for APPROXIMATE

    @property
    def size(self) -> int:
        return int(self.rows.size)

    @property
    def everything(self) -> bool:
        return self.size == self.total


def runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous runs of sorted unique row positions, as [start, stop) pairs."""
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.concatenate(([0], breaks))]
    stops = rows[np.concatenate((breaks - 1, [rows.size - 1]))] + 1
    return starts.astype(np.int64), stops.astype(np.int64)


def plan(rows: np.ndarray, total: int, approximate: Approximate | None = None) -> Plan:
    """Choose the cheapest exact way to score `rows` (sorted, unique) of a `total`-row index;
    with an IVF index, the approximate plan where every exact one is over budget and dearer."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        starts, stops = runs(rows)
        return Plan(Strategy.EMPTY, rows, starts, stops, total)
    starts, stops = runs(rows)
    costs = {
        Strategy.SCAN: total * SEQ_US_PER_ROW + CALL_US,
        Strategy.RANGES: rows.size * SEQ_US_PER_ROW + starts.size * CALL_US,
        Strategy.ROWS: rows.size * GATHER_US_PER_ROW + CALL_US,
    }
    if rows.size == total:  # the whole index: one pass, nothing to pick out afterwards
        costs[Strategy.SCAN] = total * SEQ_US_PER_ROW
    best = min(costs, key=lambda s: costs[s])
    budget = NARROW_EXACT_BUDGET_US if rows.size < NARROW_SHARE * total else EXACT_BUDGET_US
    if approximate is not None and costs[best] > budget and \
            approximate.cost_us() < costs[best]:
        return Plan(Strategy.APPROXIMATE, rows, starts, stops, total, approximate)
    return Plan(best, rows, starts, stops, total)


def top_k(scores: np.ndarray, keys: Callable[[np.ndarray], np.ndarray], k: int) -> np.ndarray:
    """Positions of the k best scores, best first; equal scores ordered by `keys(positions)`
    (the chunk ids, looked up only for the few candidates).

    Exact, but avoids a full partition of a large array: the k-th largest score is at least
    the k-th largest of the block maxima, so only scores above that can be in the top-k.
    """
    k = min(k, scores.size)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.arange(scores.size)
    block = min(1024, scores.size // (4 * k))
    if block >= 16:
        whole = (scores.size // block) * block
        maxima = scores[:whole].reshape(-1, block).max(axis=1)
        floor = np.partition(maxima, maxima.size - k)[maxima.size - k]
        candidates = np.flatnonzero(scores >= floor)
    if candidates.size > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        kth = scores[candidates[part]].min()
        candidates = candidates[scores[candidates] >= kth]  # keep every tie at the boundary
    order = np.lexsort((keys(candidates), -scores[candidates]))[:k]
    return candidates[order]
