"""The index directory's layout, and the two moves that change what is live.

    INDEX/CURRENT                  name of the live generation (replaced atomically)
    INDEX/generations/NAME/        one complete, immutable build: meta.sqlite, vectors.npy and
                                   vector_ids.npy (memory-mapped when served), report.json
                                   (NAME sorts by build time), lexical.npz (the BM25 postings),
                                   ann.faiss where the index is large enough for an approximate
                                   path; generations written before 2026-12 hold vectors.faiss
                                   instead of the two .npy files, and may lack lexical.npz
    INDEX/generations/NAME/shards/I/   (a generation built with --shards N) shard I of N: the
                                   meta.sqlite, vectors, postings and IVF of its documents; NAME
                                   itself then holds every row (meta.sqlite) and no vectors
    INDEX/generations/NAME.tmp/    a build in progress; never read, removed if a build died
    INDEX/.build.lock              one build or rollback at a time (lock.py)
    INDEX/runs.jsonl               every build run's outcome, published or not (runs.py)

Beside them, outside every generation, the search API keeps its keys and audit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CURRENT = "CURRENT"
GENERATIONS = "generations"
META_DB = "meta.sqlite"
VECTORS = "vectors.npy"  # float32 rows in layout order, memory-mapped by every reader
VECTOR_IDS = "vector_ids.npy"  # the chunk id of each row
ANN = "ann.faiss"  # IVF index over the rows (ann.py); only in generations large enough for it
VECTOR_SCRATCH = "vectors.unordered"  # rows as added, while a generation is written
LEGACY_VECTORS = "vectors.faiss"  # one FAISS IndexIDMap(IndexFlatIP), before 2026-12
REPORT = "report.json"
LEXICAL = "lexical.npz"  # the BM25 postings (bm25.py)
FILES = (META_DB, VECTORS, VECTOR_IDS, REPORT)  # what a generation written today holds
SHARDS = "shards"  # a sharded generation: shards/0, shards/1, ... each a store of its documents
# Written by every generation since per-caller BM25; older ones compute it when first searched.
OPTIONAL_FILES = (LEXICAL,)
# The order of the rows of the vectors and of the postings: chunks by access rule, then document,
# so that what one partner may see lies in a few runs of rows, and a search reads those runs.
BY_RULE = ("SELECT c.chunk_id FROM chunks c JOIN documents d USING (doc_id) "
           "ORDER BY d.rule IS NULL, d.rule, c.doc_id, c.ordinal")
# How many of those rows each access rule holds, in the same order: the access groups, each a
# run of rows, by which the postings are partitioned (bm25.py).
RULE_SIZES = ("SELECT count(*) FROM chunks c JOIN documents d USING (doc_id) "
              "GROUP BY d.rule ORDER BY d.rule IS NULL, d.rule")


class StoreError(Exception):
    """The index directory is missing, locked or unreadable."""


def live_generation_dir(root: Path) -> Path | None:
    """The directory CURRENT names, or None when nothing has been published yet."""
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = root / GENERATIONS / name
    return path if name and path.is_dir() else None


def is_complete(path: Path) -> bool:
    """A whole generation (of today's layout or the one before), not a build in progress."""
    if path.name.endswith(".tmp") or not (path / META_DB).is_file() or \
            not (path / REPORT).is_file():
        return False
    if (path / SHARDS).is_dir():
        parts = [p for p in (path / SHARDS).iterdir() if p.is_dir()]
        return bool(parts) and all((p / name).is_file() for p in parts
                                   for name in (META_DB, VECTORS, VECTOR_IDS))
    return all((path / name).is_file() for name in (VECTORS, VECTOR_IDS)) or \
        (path / LEGACY_VECTORS).is_file()


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document's rows and vectors go to: a stable hash of its id, so a document's
    chunks stay together and the same document lands on the same shard in every build."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") % shards


def fsync_dir(path: Path) -> None:
    """Make a create or rename in `path` durable (the audit log uses it too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_current(root: Path, name: str) -> None:
    """Make generation `name` live in one atomic rename (publish and rollback)."""
    pointer = root / f"{CURRENT}.tmp"
    pointer.write_text(name + "\n", encoding="utf-8")
    with open(pointer, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer, root / CURRENT)
    fsync_dir(root)
