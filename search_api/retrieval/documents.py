"""Which document each chunk belongs to, in memory: what document-aware fusion needs for the
few hundred candidates of every hybrid query.

Asking SQLite for the candidates' rows (`chunk_spans`) cost about 0.5 ms of CPU per query, a
sizeable share of a search's fixed work beside the model (docs/PERFORMANCE.md). Two int64
arrays per generation (16 bytes a chunk: 16 MB per million chunks) answer it with one binary
search. Built once when the generation is loaded; a generation never changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from indexer.store.reader import Generation


class ChunkDocuments:
    """Chunk id -> a number naming its document (equal numbers: the same document)."""

    def __init__(self, chunk_ids: np.ndarray, documents: np.ndarray) -> None:
        if chunk_ids.shape != documents.shape:
            raise ValueError("one document number per chunk id")
        self._ids, self._documents = chunk_ids, documents  # ids ascending

    @classmethod
    def of(cls, generation: Generation) -> ChunkDocuments:
        return cls(*generation.chunk_documents())

    def __call__(self, chunk_ids: Iterable[int]) -> dict[int, int]:
        """The document number of each chunk id that the generation holds (others are left
        out, as a lookup of their rows would leave them out)."""
        ids = np.fromiter(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._ids, ids), max(self._ids.size - 1, 0))
        found = self._ids[at] == ids if self._ids.size else np.zeros(ids.size, dtype=bool)
        return dict(zip(ids[found].tolist(), self._documents[at[found]].tolist(), strict=True))
