"""The vector store: the one place that touches FAISS.

Vectors live in one plain float32 matrix whose rows are laid out so that a partner's chunks are
contiguous (the writer passes the order), beside the chunk id of each row and a sorted id index.
A search maps the caller's allowed ids to rows once (cached per allowed set), lets the planner
choose how to read them, and scores exactly those rows with FAISS's single-thread SIMD kernels:
its cost grows with what the caller may see, not with the whole index. Every plan is exact.

On disk the matrix is a plain `.npy` file (rows in layout order) beside the chunk id of each
row; a reader memory-maps it, so the server's worker processes on one host share one copy in the
page cache and a new generation is served without reading it all first. Generations written
before hold one FAISS file (an IndexIDMap over an IndexFlatIP), which is still read (copied
into memory).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store.layout import LEGACY_VECTORS, VECTOR_IDS, VECTORS
from indexer.store.planner import Plan, Strategy, plan, top_k

# FAISS's plain SIMD kernels (one thread, no index object); its type stubs omit them.
kernels: Any = faiss
PLAN_CACHE = 256  # allowed sets kept mapped to rows (one per partner and day in the server)
# A broad allowed set whose rows lie scattered (grants made document by document) is read by
# position, about 4x slower per byte than a sequential pass (10 % of 1M: 19 ms against 5 ms).
# Such a set, once cached, gets its rows copied together ("packed") and is then scanned like a
# contiguous one. Packed copies are bounded to PACK_BUDGET of the matrix's bytes (384 bytes per
# chunk at most, so vectors, ids and every search structure stay under 2 kB per chunk); the
# least recently planned lose their copy first.
SAVE_BLOCK = 65_536  # rows copied to disk per step (100 MB of 384-d vectors)
PACK_MIN_ROWS = 20_000  # below this, reading by position is already fast (1 % of 1M: 1.5 ms)
PACK_BUDGET = 0.25


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


class VectorStore:
    """Exact inner-product search over normalised vectors, keyed by chunk id."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._plans: OrderedDict[int, tuple[np.ndarray, Plan]] = OrderedDict()
        self._packed: OrderedDict[int, np.ndarray] = OrderedDict()  # by the key of _plans
        self._lock = threading.Lock()
        self._set(np.asarray(ids, dtype=np.int64), matrix)

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
        self._plans.clear()
        self._packed.clear()

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))

    @classmethod
    def load(cls, directory: Path) -> VectorStore:
        """The vectors of a generation directory: memory-mapped, read-only."""
        if not (directory / VECTORS).is_file() and (directory / LEGACY_VECTORS).is_file():
            return cls._load_faiss(directory / LEGACY_VECTORS)
        matrix = np.load(directory / VECTORS, mmap_mode="r")
        ids = np.load(directory / VECTOR_IDS)
        if matrix.ndim != 2 or matrix.dtype != np.float32 or ids.shape != (matrix.shape[0],):
            raise ValueError(f"{directory / VECTORS}: {matrix.shape} {matrix.dtype} rows for "
                             f"{ids.shape} ids; not a vector file of this index")
        return cls(ids, matrix)

    @classmethod
    def _load_faiss(cls, path: Path) -> VectorStore:
        index: Any = faiss.read_index(str(path))
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        flat: Any = faiss.downcast_index(index.index)
        matrix = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, index.d)
        del flat, index  # the matrix is a copy; FAISS's own buffers are freed here
        return cls(ids, matrix)

    def save(self, directory: Path, order: np.ndarray | None = None) -> None:
        """Write rows in `order` (chunk ids; ids it omits follow in id order) so that each
        partner's chunks are contiguous when the store is loaded again; synced to disk. Rows
        are copied in blocks, never a second copy of the whole matrix."""
        self._consolidate()
        rows = np.arange(len(self))
        if order is not None:
            first = self._rows(np.asarray(order, dtype=np.int64), sort=False)
            rest = np.setdiff1d(rows, first, assume_unique=True)
            rows = np.concatenate((first, rest[np.argsort(self._ids[rest])]))
        out = np.lib.format.open_memmap(directory / VECTORS, mode="w+", dtype=np.float32,
                                        shape=(len(self), self.dim))
        for start in range(0, rows.size, SAVE_BLOCK):
            out[start:start + SAVE_BLOCK] = self._matrix[rows[start:start + SAVE_BLOCK]]
        out.flush()
        del out
        with open(directory / VECTOR_IDS, "wb") as handle:
            np.save(handle, self._ids[rows])
        for name in (VECTORS, VECTOR_IDS):
            with open(directory / name, "rb") as handle:
                os.fsync(handle.fileno())

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
    def plan_cache_bytes(self) -> int:
        """Bytes of cached plans (row lists), packed copies included."""
        return sum(p.rows.nbytes + p.starts.nbytes + p.stops.nbytes
                   for _, p in list(self._plans.values())) + self.packed_bytes

    @property
    def packed_bytes(self) -> int:
        return sum(m.nbytes for m in list(self._packed.values()))

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
        return self._planned(allowed)[1] is not None

    def _planned(self, allowed: np.ndarray) -> tuple[Plan, np.ndarray | None]:
        """The plan, and the packed copy of its rows if the set has one."""
        self._consolidate()
        key = id(allowed)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is allowed:
            packed = self._packed.get(key)
            if packed is not None:
                with self._lock:
                    if key in self._packed:
                        self._packed.move_to_end(key)
            return cached[1], packed
        ids = np.asarray(allowed, dtype=np.int64).reshape(-1)
        if ids.size == self._ids.size and np.array_equal(ids, self._sorted_ids):
            rows = np.arange(ids.size, dtype=np.int64)  # everything: no lookup needed
        else:
            rows = self._rows(np.unique(ids))
        chosen = plan(rows, len(self))
        packed = None
        if isinstance(allowed, np.ndarray) and not allowed.flags.writeable:
            packed = self._pack(chosen)
            with self._lock:  # the cache holds the array, so its id cannot be reused
                self._plans[key] = (allowed, chosen)
                while len(self._plans) > PLAN_CACHE:
                    old, _ = self._plans.popitem(last=False)
                    self._packed.pop(old, None)
                if packed is not None:
                    self._packed[key] = packed
                    budget = PACK_BUDGET * self._matrix.nbytes
                    while self.packed_bytes > budget:
                        self._packed.popitem(last=False)
                    if key not in self._packed:
                        packed = None
        return chosen, packed

    def _pack(self, chosen: Plan) -> np.ndarray | None:
        """The rows of a broad, scattered plan copied together, if they fit the budget."""
        if chosen.strategy is not Strategy.ROWS or chosen.size < PACK_MIN_ROWS:
            return None
        if chosen.size * self._matrix.itemsize * self.dim > PACK_BUDGET * self._matrix.nbytes:
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
        """True top-k among `allowed` only: only allowed rows are ever scored.

        `allowed` is required and never means "everything": an empty set finds nothing.
        Returns min(k, allowed ids that are stored) hits, best first, ties by chunk id.
        """
        chosen, packed = self._planned(allowed)
        if k <= 0 or chosen.size == 0:
            return []
        vector = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        if vector.size != self.dim:
            raise ValueError(f"query has {vector.size} dimensions, the index {self.dim}")
        scores = self._score(chosen, vector, packed)
        rows = chosen.rows
        best = top_k(scores, lambda at: self._ids[rows[at]], k)
        return [Hit(int(i), float(s)) for i, s in zip(self._ids[rows[best]], scores[best],
                                                       strict=True)]
