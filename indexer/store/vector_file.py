"""Vector files: writing a generation's vectors without a second copy in memory.

A build of ten million chunks has 15 GB of float32 vectors on a machine of 24 GB. The writer
appends each embedded block to a scratch file in the new generation's directory as it comes
(`VectorFile.add`), keeping only the chunk ids in memory; at publish the rows are copied once,
in blocks, into vectors.npy in layout order (`write_ordered`), the scratch file is removed, and
for a generation large enough the IVF index is built from the memory-mapped result (ann.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store.ann import AnnIndex
from indexer.store.layout import ANN, VECTOR_IDS, VECTOR_SCRATCH, VECTORS
from indexer.store.planner import EXACT_BUDGET_US, SEQ_US_PER_ROW

SAVE_BLOCK = 65_536  # rows copied to disk per step (100 MB of 384-d vectors)
# An IVF index pays off once a whole-index exact scan exceeds the exact budget (planner.py):
# about 270,000 rows of 384-d. Smaller generations keep the exact plans only.
ANN_MIN_ROWS = int(EXACT_BUDGET_US / SEQ_US_PER_ROW)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_ordered(directory: Path, ids: np.ndarray, matrix: np.ndarray,
                  order: np.ndarray | None) -> None:
    """vectors.npy and vector_ids.npy with rows in `order` (chunk ids; ids it omits follow in
    id order), copied in blocks from `matrix` (in memory or memory-mapped); synced."""
    rows = np.arange(ids.size)
    if order is not None:
        sorter = np.argsort(ids, kind="stable")
        wanted = np.asarray(order, dtype=np.int64)
        pos = np.minimum(np.searchsorted(ids, wanted, sorter=sorter), max(ids.size - 1, 0))
        first = sorter[pos[ids[sorter[pos]] == wanted]] if ids.size else pos[:0]
        rest = np.setdiff1d(rows, first, assume_unique=True)
        rows = np.concatenate((first, rest[np.argsort(ids[rest])]))
    out = np.lib.format.open_memmap(directory / VECTORS, mode="w+", dtype=np.float32,
                                    shape=(ids.size, matrix.shape[1]))
    for start in range(0, rows.size, SAVE_BLOCK):
        out[start:start + SAVE_BLOCK] = matrix[rows[start:start + SAVE_BLOCK]]
    out.flush()
    del out
    with open(directory / VECTOR_IDS, "wb") as handle:
        np.save(handle, ids[rows])
    for name in (VECTORS, VECTOR_IDS):
        _sync(directory / name)


def read_legacy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Ids and matrix of a generation written before 2026-12 (one FAISS IndexIDMap over an
    IndexFlatIP), copied into memory."""
    index: Any = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat: Any = faiss.downcast_index(index.index)
    matrix = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, index.d)
    del flat, index  # the matrix is a copy; FAISS's own buffers are freed here
    return ids, matrix


def build_ann(directory: Path, lists: int | None = None) -> None:
    """The IVF index of a written generation's vectors.npy (memory-mapped), synced."""
    matrix = np.load(directory / VECTORS, mmap_mode="r")
    AnnIndex.build(matrix, lists).save(directory / ANN)
    _sync(directory / ANN)


class VectorFile:
    """The vectors of a generation being written, spilled to disk block by block."""

    def __init__(self, directory: Path, dim: int) -> None:
        self.directory, self.dim = directory, dim
        self._path = directory / VECTOR_SCRATCH
        self._handle = open(self._path, "wb")
        self._ids: list[np.ndarray] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if vectors.ndim != 2 or vectors.shape != (ids.size, self.dim):
            raise ValueError(f"{ids.size} ids for vectors of shape {vectors.shape} "
                             f"(dimension {self.dim})")
        self._handle.write(vectors.tobytes())
        self._ids.append(ids.copy())
        self._rows += ids.size

    def write(self, order: np.ndarray | None, ann_min_rows: int = ANN_MIN_ROWS) -> None:
        """Write the rows in `order` (see write_ordered), then the IVF index if the
        generation has at least `ann_min_rows` rows; the scratch file is removed."""
        self._handle.close()
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        matrix = np.memmap(self._path, dtype=np.float32, mode="r", shape=(ids.size, self.dim)) \
            if ids.size else np.zeros((0, self.dim), dtype=np.float32)
        write_ordered(self.directory, ids, matrix, order)
        del matrix
        self._path.unlink()
        if ids.size >= ann_min_rows:
            build_ann(self.directory)

    def close(self) -> None:
        self._handle.close()
