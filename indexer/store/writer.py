"""Writing a generation: a new one is built beside the live one, synced, renamed into place,
and only then named in CURRENT (layout.py describes the directory)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from indexer.store import lexical
from indexer.store.folding import FOLDING
from indexer.store.layout import (
    BY_RULE,
    GENERATIONS,
    LEXICAL,
    META_DB,
    REPORT,
    SHARDS,
    StoreError,
    fsync_dir,
    live_generation_dir,
    point_current,
    shard_of,
)
from indexer.store.records import (
    Chunk,
    FileRecord,
    Grant,
    StoredDocument,
    encode_breaks,
    text_sha,
)
from indexer.store.vector_file import ANN_MIN_ROWS, VectorFile

LEXICAL_DIGEST = "lexical_digest"  # info key: lexical.content_digest of the generation
SCHEMA = """
CREATE TABLE info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE partners(partner TEXT PRIMARY KEY);
CREATE TABLE documents(
    doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL,
    content_sha TEXT NOT NULL, rule INTEGER, owner TEXT);
CREATE INDEX documents_by_rule ON documents(rule, doc_id);
CREATE TABLE grants(
    doc_id TEXT NOT NULL REFERENCES documents(doc_id), partner TEXT NOT NULL, until TEXT,
    PRIMARY KEY (doc_id, partner));
CREATE TABLE chunks(
    chunk_id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL, page INTEGER, char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL, text TEXT NOT NULL, section TEXT,
    ocr INTEGER NOT NULL DEFAULT 0, text_sha TEXT, page_end INTEGER, page_breaks TEXT);
CREATE INDEX chunks_by_doc ON chunks(doc_id);
CREATE INDEX chunks_by_text ON chunks(text_sha);
CREATE TABLE files(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, doc_ids TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
"""


class _Rows:
    """One meta.sqlite being written, and the vectors beside it (none for the top level of a
    sharded generation, whose vectors live in its shards)."""

    def __init__(self, directory: Path, dim: int, info: dict[str, str],
                 partners: Sequence[str], vectors: bool) -> None:
        directory.mkdir(parents=True)
        self.dir = directory
        self.db = sqlite3.connect(directory / META_DB)
        self.db.executescript(SCHEMA)
        self.db.executemany("INSERT INTO info VALUES (?, ?)", sorted(info.items()))
        self.db.executemany("INSERT INTO partners VALUES (?)", [(p,) for p in partners])
        self.vectors = VectorFile(directory, dim) if vectors else None

    def add_document(self, doc: StoredDocument, grant: Grant) -> None:
        self.db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                        (doc.doc_id, doc.path, doc.title, doc.content_sha, grant.rule,
                         grant.owner))
        until = grant.until.isoformat() if grant.until else None
        self.db.executemany("INSERT INTO grants VALUES (?, ?, ?)",
                            [(doc.doc_id, p, until) for p in sorted(grant.partners)])

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        self.db.executemany(
            "INSERT INTO chunks (chunk_id, doc_id, ordinal, page, char_start, char_end, text, "
            "section, ocr, text_sha, page_end, page_breaks) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, c.doc_id, c.ordinal, c.page, c.char_start, c.char_end, c.text,
              c.section, int(c.ocr), text_sha(c.text), c.page_end,
              encode_breaks(c.breaks)) for c in chunks],
        )
        if self.vectors is not None:
            self.vectors.add(np.array([c.chunk_id for c in chunks], dtype=np.int64), vectors)

    def finish(self, ann_min_rows: int, live: Path | None) -> None:
        """The lexical index and its postings (linked from `live`, the same store of the live
        generation, when its chunks are the same), the rows committed, then the vectors in
        layout order. The top level of a sharded generation has neither: its shards are
        searched."""
        searched = self.vectors is not None  # not the top level of a sharded generation
        if searched:
            lexical.fill(self.db)  # the FTS5 index of these chunks
            digest = lexical.content_digest(self.db)
            self.db.execute("INSERT INTO info VALUES (?, ?)", (LEXICAL_DIGEST, digest))
        self.db.commit()
        if searched and not self._reuse_postings(live, digest):  # what BM25 reads (bm25.py)
            lexical.postings_of(self.db).save(self.dir / LEXICAL)
        layout = self._layout()
        self.db.close()
        if self.vectors is not None:
            self.vectors.write(layout, ann_min_rows)
        for name in (META_DB, LEXICAL) if searched else (META_DB,):
            with open(self.dir / name, "rb") as handle:
                os.fsync(handle.fileno())

    def _reuse_postings(self, live: Path | None, digest: str) -> bool:
        """Link the live generation's postings when they were exported from the same chunks:
        a nightly re-build of an unchanged corpus does not export them again."""
        if live is None or not (live / LEXICAL).is_file() or not (live / META_DB).is_file():
            return False
        uri = f"file:{live / META_DB}?mode=ro&immutable=1"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT value FROM info WHERE key = ?", (LEXICAL_DIGEST,)).fetchone()
        if row is None or row[0] != digest:
            return False
        try:
            os.link(live / LEXICAL, self.dir / LEXICAL)  # generations never change: share it
        except OSError:
            shutil.copyfile(live / LEXICAL, self.dir / LEXICAL)
        return True

    def _layout(self) -> np.ndarray:
        """Chunk ids by access rule, then document: a partner's chunks lie in a few contiguous
        runs of vector rows, so searching what it may see reads only those (planner.py)."""
        return np.array([r[0] for r in self.db.execute(BY_RULE)], dtype=np.int64)

    def close(self) -> None:
        if self.vectors is not None:
            self.vectors.close()
        self.db.close()


class GenerationWriter:
    """Writes one new generation beside the live one; `publish` makes it live atomically.

    With `shards` > 1 the generation is written as that many shards, by document (layout.py's
    `shard_of`): each shard a store of its documents' rows, lexical index and vectors, which a
    shard server loads alone; the top level keeps every row for the API (passages, grants).
    """

    def __init__(self, root: Path, dim: int, info: dict[str, str], partners: Sequence[str],
                 ann_min_rows: int = ANN_MIN_ROWS, shards: int = 1):
        if shards < 1:
            raise StoreError(f"a generation has at least one shard, not {shards}")
        self.root = root
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sorts by time
        self.name = f"{stamp}-{secrets.token_hex(3)}"
        self.final_dir = root / GENERATIONS / self.name
        self.dir = root / GENERATIONS / f"{self.name}.tmp"
        info = {**info, "generation": self.name, lexical.FOLDING_KEY: FOLDING}
        if shards > 1:
            info["shards"] = str(shards)
        self._main = _Rows(self.dir, dim, info, partners, vectors=shards == 1)
        own = {key: value for key, value in info.items() if key != "shards"}  # a shard is whole
        self._shards = [_Rows(self.dir / SHARDS / str(i), dim, {**own, "shard": f"{i}/{shards}"},
                              partners, vectors=True) for i in range(shards)] if shards > 1 \
            else []
        self._doc_shard: dict[str, int] = {}
        self._ann_min_rows = ann_min_rows
        self._ids: set[int] = set()

    def add_document(self, doc: StoredDocument, grant: Grant) -> None:
        """A document with the grant today's access rules give it."""
        self._main.add_document(doc, grant)
        if self._shards:
            number = shard_of(doc.doc_id, len(self._shards))
            self._shards[number].add_document(doc, grant)
            self._doc_shard[doc.doc_id] = number

    def add_files(self, records: Iterable[FileRecord]) -> None:
        self._main.db.executemany(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.path, r.size, r.mtime_ns, r.sha256, json.dumps(list(r.doc_ids)), r.status,
              r.reason) for r in records])

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for chunk in chunks:
            if chunk.chunk_id in self._ids:  # a 53-bit hash collision: refuse, never overwrite
                raise StoreError(f"duplicate chunk id {chunk.chunk_id} ({chunk.doc_id})")
            self._ids.add(chunk.chunk_id)
        self._main.add_chunks(chunks, vectors)
        if self._shards:
            by_shard: dict[int, list[int]] = {}
            for at, chunk in enumerate(chunks):
                by_shard.setdefault(self._doc_shard[chunk.doc_id], []).append(at)
            for number, picked in sorted(by_shard.items()):
                self._shards[number].add_chunks([chunks[i] for i in picked], vectors[picked])

    def publish(self, report: dict[str, object], keep: int) -> Path:
        """Sync everything, rename into place, then point CURRENT at it in one rename."""
        live = live_generation_dir(self.root)
        self._main.finish(self._ann_min_rows, live)
        for number, part in enumerate(self._shards):
            part.finish(self._ann_min_rows, live / SHARDS / str(number) if live else None)
        (self.dir / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
        with open(self.dir / REPORT, "rb") as handle:
            os.fsync(handle.fileno())
        for part in self._shards:
            fsync_dir(part.dir)
        os.rename(self.dir, self.final_dir)
        fsync_dir(self.final_dir.parent)
        point_current(self.root, self.name)
        prune_generations(self.root, keep)
        return self.final_dir

    def abort(self) -> None:
        try:
            for part in (self._main, *self._shards):
                part.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def prune_generations(root: Path, keep: int) -> None:
    """Keep the live generation and the newest `keep - 1` others; drop dead temp dirs.

    Only called under the build lock, so any `.tmp` directory left is from a build that died.
    """
    live = live_generation_dir(root)
    gens = sorted((p for p in (root / GENERATIONS).iterdir() if p.is_dir()), reverse=True)
    kept = 0
    for path in gens:
        if path.name.endswith(".tmp"):
            shutil.rmtree(path, ignore_errors=True)
        elif path == live:
            continue
        elif kept < keep - 1:
            kept += 1
        else:
            shutil.rmtree(path, ignore_errors=True)
