"""The vector store: the one place that touches FAISS.

Kept behind a small interface (add, delete, search within an allowed set, save/load) so that a
later engine with in-index filtering can replace it without touching access control.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


class VectorStore:
    """Exact inner-product search over normalised vectors, keyed by chunk id."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )

    def delete(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of these ids, in order: lets a rebuild reuse unchanged embeddings."""
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, allowed: np.ndarray, k: int) -> list[Hit]:
        """True top-k among `allowed` only: the filter runs inside the scan, not after it.

        `allowed` is required and never means "everything": an empty set finds nothing.
        """
        k = min(k, len(allowed))
        if k <= 0:
            return []
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self._index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        hits = [Hit(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]
        # Equal scores (duplicate passages) come back in a stable order.
        hits.sort(key=lambda h: (-h.score, h.chunk_id))
        return hits
