"""The vector store: with ann.py and vector_file.py, the only code that touches FAISS.

Vectors live in one plain float32 matrix whose rows are laid out so that a partner's chunks are
contiguous (the writer passes the order), beside the chunk id of each row and a sorted id index.
A search maps the caller's allowed ids to rows once (cached per allowed set), lets the planner
choose how to read them, and scores exactly those rows with FAISS's single-thread SIMD kernels:
its cost grows with what the caller may see, not with the whole index. Every plan is exact but
one: a generation large enough to have an IVF index (ann.py, ann.faiss) searches a broad allowed
set through it, with the set as the IVF's ID selector, and re-scores the candidates exactly.

On disk the matrix is a plain `.npy` file (rows in layout order) beside the chunk id of each
row; a reader memory-maps it, so the server's worker processes on one host share one copy in the
page cache and a new generation is served without reading it all first. Generations written
before hold one FAISS file (an IndexIDMap over an IndexFlatIP), which is still read (copied
into memory).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store.ann import AnnIndex, Coverage, bitmap_of, depth_for
from indexer.store.layout import ANN, LEGACY_VECTORS, VECTOR_IDS, VECTORS
from indexer.store.plan_cache import PlanCache, cacheable
from indexer.store.planner import Plan, Strategy, plan, top_k
from indexer.store.vector_file import read_legacy, write_ordered

# FAISS's plain SIMD kernels (one thread, no index object); its type stubs omit them.
kernels: Any = faiss
# A broad allowed set whose rows lie scattered (grants made document by document) is read by
# position, about 4x slower per byte than a sequential pass (10 % of 1M: 19 ms against 5 ms).
# Such a set, once cached, gets its rows copied together ("packed") and is then scanned like a
# contiguous one. Packed copies are bounded to PACK_BUDGET of the matrix's bytes (384 bytes per
# chunk at most, so vectors, ids and every search structure stay under 2 kB per chunk); the
# least recently planned lose their copy first.
PACK_MIN_ROWS = 20_000  # below this, reading by position is already fast (1 % of 1M: 1.5 ms)
PACK_BUDGET = 0.25
PLAN_K = 10  # the k a cached plan is costed for


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


class VectorStore:
    """Exact inner-product search over normalised vectors, keyed by chunk id."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray, ann: AnnIndex | None = None,
                 pack_budget: float = PACK_BUDGET) -> None:
        self.pack_budget = pack_budget  # the share of the matrix packed copies may take
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._cache = PlanCache()
        self._lock = threading.Lock()
        self._set(np.asarray(ids, dtype=np.int64), matrix)
        if ann is not None and ann.total != len(self):
            raise ValueError(f"the IVF index holds {ann.total} rows, the matrix {len(self)}")
        self.ann = ann
        # Where each access group's rows begin (layout order), when the generation says: the
        # IVF is then read group by group (ann.py), never reading entries of other groups.
        self.groups: np.ndarray | None = None

    def _set(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        """Install rows (in layout order) and the sorted id -> row index beside them."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        if sorted_ids.size > 1 and bool((sorted_ids[1:] == sorted_ids[:-1]).any()):
            dup = int(sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0])
            raise ValueError(f"chunk id {dup} is stored twice")
        self._ids = ids
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._sorted_ids = sorted_ids
        self._row_of_sorted = order.astype(np.int32 if ids.size < 2**31 else np.int64)
        self._cache.clear()
        self.ann = None  # its entries are row positions of the matrix it was built on

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))

    @classmethod
    def load(cls, directory: Path, pack_budget: float = PACK_BUDGET) -> VectorStore:
        """The vectors of a generation directory: memory-mapped, read-only. `pack_budget`:
        the share of the matrix this process may copy for packed sets (the server divides
        its budget among its worker processes, which share the matrix but not the copies)."""
        if not (directory / VECTORS).is_file() and (directory / LEGACY_VECTORS).is_file():
            return cls(*read_legacy(directory / LEGACY_VECTORS), pack_budget=pack_budget)
        matrix = np.load(directory / VECTORS, mmap_mode="r")
        ids = np.load(directory / VECTOR_IDS)
        if matrix.ndim != 2 or matrix.dtype != np.float32 or ids.shape != (matrix.shape[0],):
            raise ValueError(f"{directory / VECTORS}: {matrix.shape} {matrix.dtype} rows for "
                             f"{ids.shape} ids; not a vector file of this index")
        ann = AnnIndex.load(directory / ANN) if (directory / ANN).is_file() else None
        return cls(ids, matrix, ann, pack_budget)

    def save(self, directory: Path, order: np.ndarray | None = None) -> None:
        """Write rows in `order` (chunk ids; ids it omits follow in id order) so that each
        partner's chunks are contiguous when the store is loaded again; synced to disk."""
        self._consolidate()
        write_ordered(directory, self._ids, self._matrix, order)

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held for vectors, ids and the id index (cached plans are bounded apart)."""
        self._consolidate()
        return int(self._matrix.nbytes + self._ids.nbytes + self._sorted_ids.nbytes
                   + self._row_of_sorted.nbytes)

    @property
    def ann_bytes(self) -> int:
        """Bytes of the IVF index (codes, row ids, centroids); 0 without one."""
        return self.ann.nbytes if self.ann is not None else 0

    @property
    def plan_cache_bytes(self) -> int:
        """Bytes of cached plans (row lists), packed copies and selector bitmaps included."""
        return self._cache.nbytes

    @property
    def packed_bytes(self) -> int:
        return self._cache.packed_bytes

    def __len__(self) -> int:
        return int(self._ids.size) + sum(ids.size for ids, _ in self._pending)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size != vectors.shape[0]:
            raise ValueError(f"{ids.size} ids for {vectors.shape[0]} vectors")
        with self._lock:
            self._pending.append((ids.copy(), vectors.copy()))

    def _consolidate(self) -> None:
        """Fold added blocks into the matrix once, not once per block."""
        if not self._pending:
            return
        with self._lock:
            blocks, self._pending = self._pending, []
            self._set(np.concatenate([self._ids] + [i for i, _ in blocks]),
                      np.concatenate([self._matrix] + [v for _, v in blocks]))

    def delete(self, ids: np.ndarray) -> int:
        self._consolidate()
        rows = self._rows(np.asarray(ids, dtype=np.int64))
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        self._set(self._ids[keep], self._matrix[keep])
        return int(rows.size)

    def _rows(self, ids: np.ndarray, sort: bool = True) -> np.ndarray:
        """Row positions of the stored ids among `ids` (unknown ids are skipped)."""
        if self._sorted_ids.size == 0 or ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self._sorted_ids, ids)
        np.minimum(pos, self._sorted_ids.size - 1, out=pos)
        found = self._sorted_ids[pos] == ids
        rows = self._row_of_sorted[pos[found]].astype(np.int64)
        return np.sort(rows) if sort else rows

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which of these chunk ids are stored here (a boolean mask)."""
        self._consolidate()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self._sorted_ids.size == 0:
            return np.zeros(ids.size, dtype=bool)
        pos = np.minimum(np.searchsorted(self._sorted_ids, ids), self._sorted_ids.size - 1)
        return np.asarray(self._sorted_ids[pos] == ids)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of these ids, in order: lets a rebuild reuse unchanged embeddings."""
        self._consolidate()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self._rows(ids, sort=False)
        if rows.size != ids.size:
            missing = np.setdiff1d(ids, self._ids)
            raise KeyError(f"{missing.size} chunk ids are not stored (e.g. {int(missing[0])})")
        return self._matrix[rows]

    def plan_for(self, allowed: np.ndarray) -> Plan:
        """The plan for an allowed set; kept for read-only arrays (the server's cached sets)."""
        return self._planned(allowed)[0]

    def is_packed(self, allowed: np.ndarray) -> bool:
        """Whether this (cached) allowed set is read from a packed copy of its rows."""
        chosen, extra = self._planned(allowed)
        return extra is not None and chosen.strategy is not Strategy.APPROXIMATE

    def _planned(self, allowed: np.ndarray) -> tuple[Plan, np.ndarray | Coverage | None]:
        """The plan, and the packed copy of its rows (or, for the approximate plan, the bitmap
        of its rows) if the set has one."""
        self._consolidate()
        chosen = self._cache.plan(allowed)
        if chosen is None:
            chosen = self._plan(allowed)
            if cacheable(allowed):
                self._cache.remember(allowed, chosen)
                if (packed := self._pack(chosen)) is not None:
                    kept = self._cache.keep_packed(allowed, packed,
                                                   self.pack_budget * self._matrix.nbytes)
                    return chosen, packed if kept else None
        if chosen.strategy is Strategy.APPROXIMATE:
            return chosen, self._cache.bitmap(allowed, lambda: self._selector(chosen.rows))
        return chosen, self._cache.packed(allowed) if cacheable(allowed) else None

    def _selector(self, rows: np.ndarray) -> np.ndarray | Coverage:
        """What the IVF reads an approximate plan's rows by: their access groups, or (a store
        that does not know them) a bitmap over whole lists."""
        if self.groups is not None and self.ann is not None:
            return self.ann.coverage(rows, self.groups)
        return bitmap_of(rows, len(self))

    def _plan(self, allowed: np.ndarray) -> Plan:
        ids = np.asarray(allowed, dtype=np.int64).reshape(-1)
        if ids.size == self._ids.size and np.array_equal(ids, self._sorted_ids):
            rows = np.arange(ids.size, dtype=np.int64)  # everything: no lookup needed
        else:
            rows = self._rows(np.unique(ids))
        approximate = self.ann.approximate(rows, depth_for(PLAN_K)) \
            if self.ann is not None and rows.size else None
        return plan(rows, len(self), approximate)

    def _pack(self, chosen: Plan) -> np.ndarray | None:
        """The rows of a broad, scattered plan copied together, if they fit the budget. Not
        with an IVF index: its broad sets take the approximate plan, and memory stays < 2 kB."""
        if chosen.strategy is not Strategy.ROWS or chosen.size < PACK_MIN_ROWS or \
                self.ann is not None:
            return None
        if chosen.size * self._matrix.itemsize * self.dim > \
                self.pack_budget * self._matrix.nbytes:
            return None
        return self._matrix[chosen.rows]

    def _score(self, chosen: Plan, query: np.ndarray,
               packed: np.ndarray | None = None) -> np.ndarray:
        """Scores of exactly the plan's rows, in row order."""
        sp, m, d = faiss.swig_ptr, self._matrix, self.dim
        out = np.empty(chosen.size, dtype=np.float32)
        if packed is not None:  # the same rows, in the same order, read in one pass
            kernels.fvec_inner_products_ny(sp(out), sp(query), sp(packed), d, chosen.size)
        elif chosen.strategy is Strategy.SCAN:
            full = out if chosen.everything else np.empty(len(m), dtype=np.float32)
            kernels.fvec_inner_products_ny(sp(full), sp(query), sp(m), d, len(m))
            if not chosen.everything:
                out[:] = full[chosen.rows]
        elif chosen.strategy is Strategy.RANGES:
            at = 0
            for start, stop in zip(chosen.starts.tolist(), chosen.stops.tolist(), strict=True):
                kernels.fvec_inner_products_ny(sp(out[at:]), sp(query), sp(m[start:stop]), d,
                                             stop - start)
                at += stop - start
        elif chosen.strategy is Strategy.ROWS:
            kernels.fvec_inner_products_by_idx(sp(out), sp(query), sp(m), sp(chosen.rows), d, 1,
                                             chosen.size)
        return out

    def search(self, query: np.ndarray, allowed: np.ndarray, k: int) -> list[Hit]:
        """Top-k among `allowed` only: only allowed rows are ever scored.

        `allowed` is required and never means "everything": an empty set finds nothing.
        Returns min(k, allowed ids that are stored) hits, best first, ties by chunk id; the
        true top-k on every exact plan, recall@10 >= 0.95 on the approximate one.
        """
        return self.search_planned(query, allowed, k)[0]

    def search_planned(self, query: np.ndarray, allowed: np.ndarray,
                       k: int) -> tuple[list[Hit], Strategy]:
        """`search`, and the plan that ran (for the audit and the metrics, never the caller)."""
        chosen, extra = self._planned(allowed)
        if k <= 0 or chosen.size == 0:
            return [], Strategy.EMPTY
        vector = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        if vector.size != self.dim:
            raise ValueError(f"query has {vector.size} dimensions, the index {self.dim}")
        if chosen.strategy is Strategy.APPROXIMATE and chosen.approximate is not None and \
                chosen.approximate.per_list is not None and extra is not None and \
                self.ann is not None:
            if isinstance(extra, Coverage):  # read by the caller's access groups
                rows, _ = self.ann.candidates_in(vector, extra, depth_for(k))
                return self._rescored(vector, rows, k), chosen.strategy
            return self._approximate(vector, extra, chosen.approximate.per_list, k)[0], \
                chosen.strategy
        packed = extra if isinstance(extra, np.ndarray) else None
        scores, rows = self._score(chosen, vector, packed), chosen.rows
        return self._hits(scores, rows, k), chosen.strategy

    def search_approximate(self, query: np.ndarray, rows: np.ndarray, k: int,
                           floor: float | None = None) -> tuple[list[Hit], np.ndarray]:
        """The approximate plan's answer within these allowed row positions (sorted), its first
        probe scanning at least `floor` of their entries (None: as a search would), and the
        lists it probed (their numbers). For benchmarks that ask what a larger index's probes find
        (benchmarks/filtered_search.py --as-if); the server searches through `search`."""
        if self.ann is None:
            raise ValueError("this generation has no IVF index")
        vector = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        per_list = self.ann.approximate(rows, depth_for(k)).per_list
        assert per_list is not None
        return self._approximate(vector, bitmap_of(rows, len(self)), per_list, k, floor)

    def _approximate(self, vector: np.ndarray, bitmap: np.ndarray, per_list: np.ndarray,
                     k: int, floor: float | None = None) -> tuple[list[Hit], np.ndarray]:
        """The IVF's candidates among the bitmap's rows, re-scored exactly: the top k."""
        assert self.ann is not None
        rows, probed = self.ann.candidates(vector, bitmap, per_list, depth_for(k), floor)
        return self._rescored(vector, rows, k), probed

    def _rescored(self, vector: np.ndarray, rows: np.ndarray, k: int) -> list[Hit]:
        """The IVF's candidate rows scored exactly from the float32 matrix: the top k."""
        rows = np.sort(rows)
        scores = np.empty(rows.size, dtype=np.float32)
        sp = faiss.swig_ptr
        kernels.fvec_inner_products_by_idx(sp(scores), sp(vector), sp(self._matrix),
                                           sp(rows), self.dim, 1, rows.size)
        return self._hits(scores, rows, k)

    def _hits(self, scores: np.ndarray, rows: np.ndarray, k: int) -> list[Hit]:
        best = top_k(scores, lambda at: self._ids[rows[at]], k)
        return [Hit(int(i), float(s)) for i, s in zip(self._ids[rows[best]], scores[best],
                                                       strict=True)]
