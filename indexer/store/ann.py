"""The approximate index: a FAISS inverted file (IVF) of 8-bit scalar-quantised vectors, searched
with the caller's allowed set as FAISS's own ID selector and re-scored exactly.

Why this index. A broad allowed set (an admin, a partner that sees the shared folders) at ten
million chunks costs half a second to scan exactly. FAISS's IVF with an `IDSelectorBitmap` skips
disallowed entries inside its scan (the filter stays inside the search, as ACORN and FAISS's own
search parameters do), and probing a few lists reads a few per mille of the index. HNSW was
weighed and left out: faiss-cpu's HNSW keeps its own float32 copy (3 kB per chunk with ours)
and builds ten million nodes in hours on two cores; the IVF trains on a sample in a minute.

Why 8-bit codes and an exact re-score. The float32 matrix (vectors.npy) is already there,
memory-mapped; a second float32 copy inside an IVFFlat would double the memory. The IVF keeps
one byte per dimension (384 bytes + an 8-byte row id per chunk), ranks candidates with them,
and the best `depth` candidates are scored again exactly from the float32 rows, so every score
returned is the exact cosine and only the candidate set is approximate.

Widening: the lists probed start from what the allowed share makes necessary to find `depth`
allowed entries, and double until `depth` are found or every list was probed (which scans
every allowed entry), so a caller who may see k chunks always gets k.

The entries' ids are row positions of vectors.npy (its layout order), so the selector is a
bitmap of allowed rows and the re-score reads rows directly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# FAISS's Python parameter classes take keyword arguments its type stubs do not declare.
library: Any = faiss

# Lists: about sqrt(n) (FAISS's guidance is 4-16 sqrt(n); fewer, longer lists train and assign
# faster on two cores, and the scan of a list is cheap with 8-bit codes).
LISTS_PER_SQRT = 1.0
TRAIN_PER_LIST = 40  # k-means sample: FAISS warns below 39 points per centroid
TRAIN_ITERATIONS = 10
ADD_BLOCK = 65_536
# Lists probed at first for a whole-index set; measured on clustered 384-d data, recall@10 0.99+
# at 1M (benchmarks/filtered_search.py), raised for a narrow set until `depth` can be found.
NPROBE = 16
DEPTH_PER_K = 4  # candidates re-scored exactly: 4k, at least DEPTH_MIN
DEPTH_MIN = 40
EXPECTED_FILL = 2.0  # probe lists expected to hold this many times `depth` allowed entries
# ...and at least this many allowed entries: a narrow set's nearest allowed neighbours lie
# further from the query than the whole index's, in lists beyond the first 16. Measured at 10M
# chunks (3,162 lists, benchmarks/filtered_search.py on a 16-core machine): 1 % of the index
# scattered, 16 lists probed = 506 allowed entries scanned, gave recall@10 0.883; 10 %
# scattered, 16 lists = 5,060 allowed entries, gave 0.998.
MIN_ALLOWED_SCANNED = 5_000


def lists_for(n: int) -> int:
    return max(1, min(n // TRAIN_PER_LIST, int(LISTS_PER_SQRT * math.sqrt(n))))


def depth_for(k: int) -> int:
    return max(DEPTH_MIN, DEPTH_PER_K * k)


def first_nprobe(lists: int, allowed: int, depth: int) -> int:
    """Lists to probe at first in an IVF of `lists` lists for `allowed` entries, so that they
    hold about EXPECTED_FILL x depth allowed entries, and at least MIN_ALLOWED_SCANNED (recall
    for narrow sets; the planner weighs the cost). Depends on the index only through `lists`,
    so the planner can ask it of an index it does not have (benchmarks: --as-if)."""
    if allowed <= 0:
        return lists
    per_list = allowed / lists
    wanted = max(EXPECTED_FILL * depth, min(allowed, MIN_ALLOWED_SCANNED))
    needed = math.ceil(wanted / max(per_list, 1e-9))
    return max(1, min(lists, max(NPROBE, needed)))


def bitmap_of(rows: np.ndarray, total: int) -> np.ndarray:
    """Allowed row positions as FAISS's IDSelectorBitmap reads them (bit i of byte i >> 3)."""
    bits = np.zeros(total, dtype=bool)
    bits[rows] = True
    return np.packbits(bits, bitorder="little")


class AnnIndex:
    """An IVF-SQ8 index over the rows of one vector matrix, ids = row positions."""

    def __init__(self, index: Any, keep: Any = None) -> None:
        self._index = index
        self._keep = keep  # the IVF holds a raw pointer to its quantizer: keep it alive
        self.lists = int(index.nlist)
        self.total = int(index.ntotal)

    @classmethod
    def build(cls, matrix: np.ndarray, lists: int | None = None, seed: int = 0) -> AnnIndex:
        """Train on a sample of the rows and add every row in blocks (the matrix may be a
        memory map: it is never copied whole)."""
        n, dim = matrix.shape
        lists = lists or lists_for(n)
        quantizer = faiss.IndexFlatIP(dim)
        index: Any = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists,
                                                   faiss.ScalarQuantizer.QT_8bit,
                                                   faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = TRAIN_ITERATIONS
        index.cp.seed = seed
        sample = np.sort(np.random.default_rng(seed).choice(
            n, min(n, lists * TRAIN_PER_LIST), replace=False))
        index.train(np.ascontiguousarray(matrix[sample], dtype=np.float32))
        for start in range(0, n, ADD_BLOCK):
            block = np.ascontiguousarray(matrix[start:start + ADD_BLOCK], dtype=np.float32)
            index.add_with_ids(block, np.arange(start, start + len(block), dtype=np.int64))
        return cls(index, keep=quantizer)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> AnnIndex:
        """Memory-mapped: server processes on one host share the codes in the page cache."""
        return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY))

    @property
    def nbytes(self) -> int:
        """Codes and ids of every entry, and the centroids."""
        per_entry = int(self._index.code_size) + 8
        return self.total * per_entry + self.lists * int(self._index.d) * 4

    def first_nprobe(self, allowed: int, depth: int) -> int:
        return first_nprobe(self.lists, allowed, depth)

    def candidates(self, query: np.ndarray, bitmap: np.ndarray, allowed: int,
                   depth: int, nprobe: int | None = None) -> tuple[np.ndarray, int]:
        """Row positions of up to `depth` allowed rows nearest the query by their codes, and
        the lists probed. Starts from `nprobe` lists (default: first_nprobe) and widens until
        min(depth, allowed) are found: never short."""
        selector = faiss.IDSelectorBitmap(self.total, faiss.swig_ptr(bitmap))
        nprobe = min(self.lists, nprobe or self.first_nprobe(allowed, depth))
        want = min(depth, allowed)
        q = query.reshape(1, -1)
        while True:
            params = library.SearchParametersIVF(sel=selector, nprobe=nprobe)
            _, found = self._index.search(q, depth, params=params)
            rows = found[0][found[0] >= 0]
            if rows.size >= want or nprobe >= self.lists:
                return rows, nprobe
            nprobe = min(self.lists, nprobe * 2)
