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

What a search probes. The centroids are ranked by the query; the lists that hold none of the
caller's allowed entries are skipped (the plan keeps how many each list holds), and the nearest
of the others are probed until they hold a share of the allowed set (scan_share: recall on
real embeddings decides it, docs/SCALE.md). If they still yield fewer than `depth` candidates,
the share doubles until they do or every list holding an allowed entry was probed (which scans
every allowed entry), so a caller who may see k chunks always gets k.

The entries' ids are row positions of vectors.npy (its layout order), so the selector is a
bitmap of allowed rows and the re-score reads rows directly.

Searched by access group (`candidates_in`, where the generation's groups are known): rows are in
layout order, by access rule, so each access group is a range of row positions, and each list's
entries are in row order; FAISS's `IDSelectorRange(..., assume_sorted=True)` then reads only the
range's entries of each list it probes (found by binary search), never the entries of other
groups. The lists to probe are chosen from the caller's own entries: every centroid is ranked
(the same work for every query), and the nearest lists are taken until they hold enough of the
caller's entries, so nothing widens because of entries the caller may not see. Through the
bitmap selector of a whole list, a query among hidden documents read lists full of them and
widened: 2.7 against 1.0 ms (benchmarks/ann_channel.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store.planner import Approximate

# FAISS's Python parameter classes take keyword arguments its type stubs do not declare.
library: Any = faiss

# Lists: about sqrt(n) (FAISS's guidance is 4-16 sqrt(n); fewer, longer lists train and assign
# faster on two cores, and the scan of a list is cheap with 8-bit codes).
LISTS_PER_SQRT = 1.0
TRAIN_PER_LIST = 40  # k-means sample: FAISS warns below 39 points per centroid
TRAIN_ITERATIONS = 10
ADD_BLOCK = 65_536
DEPTH_PER_K = 4  # candidates re-scored exactly: 4k, at least DEPTH_MIN
DEPTH_MIN = 40
# What a search probes: the lists nearest the query that hold any of the caller's allowed
# entries (lists without one are skipped: a partner's documents are about its own topics and
# lie in a part of the lists), nearest first, until they hold as many allowed entries as
# index_share(lists) of the index would hold at the set's purity (the allowed share of the
# lists that hold it: for an evenly spread set its share of the index, for a partner's own
# documents much more), at least MIN_ALLOWED_SCANNED (a narrow set's nearest allowed
# neighbours lie further from the query than the whole index's: at 10M chunks, 1 % scattered,
# 506 allowed entries scanned gave recall@10 0.883 on synthetic clusters) and EXPECTED_FILL x
# depth. Counting allowed entries, not entries, matters for a concentrated set: a query off its
# topics reaches it through lists that hold few of its entries. The share of the index falls
# as the lists get finer: SCAN_PER_SQRT_LISTS / sqrt(lists), 7.9 % at 1M chunks (1,000 lists),
# 4.4 % at 10M (3,162), set by recall@10 on real embeddings: 0.961-0.987 on 200,404 real
# vectors as if at 1M and 10M, where 16 lists gave 0.54-0.95 (benchmarks/recall_sweep.py,
# docs/SCALE.md).
SCAN_PER_SQRT_LISTS = 2.5
MIN_ALLOWED_SCANNED = 5_000
EXPECTED_FILL = 2.0


def lists_for(n: int) -> int:
    return max(1, min(n // TRAIN_PER_LIST, int(LISTS_PER_SQRT * math.sqrt(n))))


def depth_for(k: int) -> int:
    return max(DEPTH_MIN, DEPTH_PER_K * k)


def index_share(lists: int) -> float:
    """The share of the index's entries a search's first probe scans, in the lists nearest
    the query that hold an allowed entry."""
    return min(1.0, SCAN_PER_SQRT_LISTS / math.sqrt(max(lists, 1)))


def allowed_floor(allowed: int, depth: int) -> float:
    """The share of an allowed set's entries a search's first probe scans at least. Depends
    on the index only through the set's size, so a benchmark can ask it of an index it does not
    have (benchmarks/filtered_search.py --as-if)."""
    if allowed <= 0:
        return 1.0
    return min(1.0, max(MIN_ALLOWED_SCANNED, EXPECTED_FILL * depth) / allowed)


def approximate_for(lists: int, total: int, allowed: int, depth: int, purity: float,
                    per_list: np.ndarray | None = None,
                    holding: float | None = None) -> Approximate:
    """The planner's view of a search of `allowed` of `total` entries in an IVF of `lists`
    lists, where the lists holding the set's entries (`holding` entries in all; default every
    list) are `purity` allowed (weighted by their allowed entries; the set's share of the index
    if it is spread evenly): the entries it scans and the codes it scores."""
    purity = max(purity, 1e-9)
    codes = min(float(allowed), max(index_share(lists) * total * purity,
                                    allowed_floor(allowed, depth) * allowed))
    scanned = min(float(total if holding is None else holding), codes / purity)
    return Approximate(lists, scanned, codes, depth, per_list)


def purity_of(per_list: np.ndarray, sizes: np.ndarray) -> float:
    """The allowed share of a list holding an allowed entry, weighted by its allowed entries
    (what a probe that skips lists without allowed entries reads per allowed entry)."""
    held = per_list > 0
    total = float(per_list[held].sum())
    if total == 0:
        return 1.0
    return float((per_list[held].astype(np.float64) ** 2 / sizes[held]).sum() / total)


def bitmap_of(rows: np.ndarray, total: int) -> np.ndarray:
    """Allowed row positions as FAISS's IDSelectorBitmap reads them (bit i of byte i >> 3)."""
    bits = np.zeros(total, dtype=bool)
    bits[rows] = True
    return np.packbits(bits, bitorder="little")


@dataclass(frozen=True)
class Coverage:
    """An allowed set as the IVF reads it by access group: the row ranges of the groups it
    covers (adjacent ones joined), whether each is wholly allowed, how many allowed entries each
    list holds, how many entries of the partly covered ranges each list holds, the bitmap of
    the allowed rows (it filters a partly covered range), the allowed count, and the purity of
    the lists that hold them (purity_of: what a probe of them reads per allowed entry)."""

    ranges: list[tuple[int, int]]
    whole: list[bool]
    per_list: np.ndarray
    partial_per_list: np.ndarray
    bitmap: np.ndarray
    allowed: int
    purity: float


class AnnIndex:
    """An IVF-SQ8 index over the rows of one vector matrix, ids = row positions."""

    def __init__(self, index: Any, keep: Any = None) -> None:
        self._index = index
        self._keep = keep  # the IVF holds a raw pointer to its quantizer: keep it alive
        self.lists = int(index.nlist)
        self.total = int(index.ntotal)
        self._shape: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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
        """Codes and ids of every entry, each row's list, and the centroids."""
        per_entry = int(self._index.code_size) + 8 + self._row_dtype().itemsize
        return self.total * per_entry + self.lists * (int(self._index.d) * 4 + 8)

    def _row_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int16 if self.lists <= 2**15 else np.int32)

    def _lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's list, each list's length and the centroids: read from the index once
        (its lists' ids), 2 bytes per row."""
        if self._shape is None:
            inverted = self._index.invlists
            of_row = np.zeros(self.total, dtype=self._row_dtype())
            sizes = np.zeros(self.lists, dtype=np.int64)
            for i in range(self.lists):
                sizes[i] = size = inverted.list_size(i)
                if size:
                    ids = inverted.get_ids(i)
                    of_row[faiss.rev_swig_ptr(ids, size)] = i
                    inverted.release_ids(i, ids)
            centroids = self._index.quantizer.reconstruct_n(0, self.lists)
            self._shape = (of_row, sizes, np.ascontiguousarray(centroids, dtype=np.float32))
        return self._shape

    @property
    def list_sizes(self) -> np.ndarray:
        """The entries of each list."""
        return self._lists()[1]

    def approximate(self, rows: np.ndarray, depth: int) -> Approximate:
        """The planner's view of searching these allowed rows: the allowed entries of each
        list (what the search is guided by) and what it costs."""
        of_row, sizes, _ = self._lists()
        per_list = np.bincount(of_row[rows], minlength=self.lists).astype(np.int32)
        return approximate_for(self.lists, self.total, int(rows.size), depth,
                               purity_of(per_list, sizes), per_list,
                               float(sizes[per_list > 0].sum()))

    def candidates(self, query: np.ndarray, bitmap: np.ndarray, per_list: np.ndarray,
                   depth: int, floor: float | None = None,
                   share: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of up to `depth` allowed rows nearest the query by their codes, and
        the lists probed: the lists nearest the query that hold allowed entries (`per_list`),
        until they hold as many allowed entries as `share` of the index would at the set's
        purity (default: index_share), and at least `floor` of them (default: allowed_floor).
        Widened until min(depth, allowed) are found: never short."""
        _, sizes, centroids = self._lists()
        allowed = int(per_list.sum())
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores = centroids @ q[0]
        order = np.argsort(-scores, kind="stable")
        order = np.ascontiguousarray(order[per_list[order] > 0], dtype=np.int64)
        held = np.cumsum(per_list[order])
        wanted = max((allowed_floor(allowed, depth) if floor is None else floor) * allowed,
                     (index_share(self.lists) if share is None else share) * self.total
                     * purity_of(per_list, sizes))
        want = min(depth, allowed)
        selector = faiss.IDSelectorBitmap(self.total, faiss.swig_ptr(bitmap))
        sp = faiss.swig_ptr
        while True:
            count = min(order.size, 1 + int(np.searchsorted(held, wanted)))
            keys = order[:count]
            coarse = np.ascontiguousarray(scores[keys], dtype=np.float32)
            distances = np.empty(depth, dtype=np.float32)
            labels = np.empty(depth, dtype=np.int64)
            params = library.SearchParametersIVF(sel=selector, nprobe=max(1, count))
            self._index.search_preassigned_c(1, sp(q), depth, sp(keys), sp(coarse),
                                             sp(distances), sp(labels), False, params)
            rows = labels[labels >= 0]
            if rows.size >= want or count >= order.size:
                return rows, keys
            wanted *= 2

    def coverage(self, rows: np.ndarray, groups: np.ndarray) -> Coverage:
        """How the IVF reads the allowed `rows` (sorted) by the access groups whose rows
        begin at `groups` (and the last ends): made once per allowed set (plan_cache.py)."""
        group = np.searchsorted(groups, rows, side="right") - 1
        covered, counts = np.unique(group, return_counts=True)
        ranges: list[tuple[int, int]] = []
        whole: list[bool] = []
        for number, count in zip(covered.tolist(), counts.tolist(), strict=True):
            start, stop = int(groups[number]), int(groups[number + 1])
            full = count == stop - start
            if ranges and whole[-1] and full and ranges[-1][1] == start:
                ranges[-1] = (ranges[-1][0], stop)  # adjacent wholly allowed groups: one range
            else:
                ranges.append((start, stop))
                whole.append(full)
        of_row, sizes, _ = self._lists()
        partial = [np.arange(a, b) for (a, b), full in zip(ranges, whole, strict=True)
                   if not full]
        per_list = np.bincount(of_row[rows], minlength=self.lists)
        return Coverage(ranges, whole, per_list,
                        np.bincount(of_row[np.concatenate(partial)], minlength=self.lists)
                        if partial else np.zeros(self.lists, dtype=np.int64),
                        bitmap_of(rows, self.total), int(rows.size), purity_of(per_list, sizes))

    def candidates_in(self, query: np.ndarray, covered: Coverage,
                      depth: int) -> tuple[np.ndarray, int]:
        """Row positions of up to `depth` allowed rows nearest the query by their codes, read
        range by range, and the number of lists probed: the lists nearest the query that hold
        entries of the caller's (lists with none are not visited), until they hold as many of
        its entries as `candidates` asks (index_share of the index at the set's purity, at least
        allowed_floor of the set), counted in its own entries, so a query whose nearest lists
        hold hidden documents reads as many of the caller's entries as any other. Never short:
        they hold at least min(depth, allowed) allowed entries."""
        _, _, centroids = self._lists()
        wanted = max(allowed_floor(covered.allowed, depth) * covered.allowed,
                     index_share(self.lists) * self.total * covered.purity)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores = centroids @ q[0]  # every centroid: the same work for every query
        order = np.argsort(-scores, kind="stable")
        order = order[covered.per_list[order] > 0]  # lists without an entry of the caller's
        reach = np.cumsum(covered.per_list[order])
        nprobe = max(1, min(order.size, int(np.searchsorted(reach, wanted)) + 1))
        assign = np.ascontiguousarray(order[:nprobe].reshape(1, -1), dtype=np.int64)
        near = np.ascontiguousarray(scores[order[:nprobe]].reshape(1, -1), dtype=np.float32)
        found_scores, found_rows = [], []
        partial = int(covered.partial_per_list[assign[0]].sum())
        for (start, stop), full in zip(covered.ranges, covered.whole, strict=True):
            k = depth if full else max(depth, min(stop - start, partial))
            params = library.SearchParametersIVF(
                sel=faiss.IDSelectorRange(start, stop, True), nprobe=nprobe)
            found, rows = np.empty((1, k), np.float32), np.empty((1, k), np.int64)
            sp = faiss.swig_ptr  # FAISS's Python wrapper takes no search parameters here
            self._index.search_preassigned_c(1, sp(q), k, sp(assign), sp(near), sp(found),
                                             sp(rows), False, params)
            keep = rows[0] >= 0
            found, rows = found[0][keep], rows[0][keep]
            if not full:
                allowed = (covered.bitmap[rows >> 3] >> (rows & 7)) & 1 == 1
                found, rows = found[allowed], rows[allowed]
            found_scores.append(found)
            found_rows.append(rows)
        ranked, rows = np.concatenate(found_scores), np.concatenate(found_rows)
        return rows[np.argsort(-ranked, kind="stable")[:depth]], nprobe
