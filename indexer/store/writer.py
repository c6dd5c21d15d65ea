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
from indexer.store.layout import (
    BY_RULE,
    FILES,
    GENERATIONS,
    LEXICAL,
    META_DB,
    OPTIONAL_FILES,
    REPORT,
    StoreError,
    fsync_dir,
    live_generation_dir,
    point_current,
)
from indexer.store.records import Chunk, FileRecord, Grant, StoredDocument, text_sha
from indexer.store.vectors import VectorStore

LEXICAL_DIGEST = "lexical_digest"  # info key: lexical.content_digest of the generation
SCHEMA = """
CREATE TABLE info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE partners(partner TEXT PRIMARY KEY);
CREATE TABLE documents(
    doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL,
    content_sha TEXT NOT NULL, rule INTEGER, owner TEXT);
CREATE TABLE grants(
    doc_id TEXT NOT NULL REFERENCES documents(doc_id), partner TEXT NOT NULL, until TEXT,
    PRIMARY KEY (doc_id, partner));
CREATE TABLE chunks(
    chunk_id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL, page INTEGER, char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL, text TEXT NOT NULL, section TEXT,
    ocr INTEGER NOT NULL DEFAULT 0, text_sha TEXT);
CREATE INDEX chunks_by_doc ON chunks(doc_id);
CREATE INDEX chunks_by_text ON chunks(text_sha);
CREATE TABLE files(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, doc_ids TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
"""


class GenerationWriter:
    """Writes one new generation beside the live one; `publish` makes it live atomically."""

    def __init__(self, root: Path, dim: int, info: dict[str, str], partners: Sequence[str]):
        self.root = root
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sorts by time
        self.name = f"{stamp}-{secrets.token_hex(3)}"
        self.final_dir = root / GENERATIONS / self.name
        self.dir = root / GENERATIONS / f"{self.name}.tmp"
        self.dir.mkdir(parents=True)
        self._db = sqlite3.connect(self.dir / META_DB)
        self._db.executescript(SCHEMA)
        self._db.executemany("INSERT INTO info VALUES (?, ?)",
                             sorted({**info, "generation": self.name}.items()))
        self._db.executemany("INSERT INTO partners VALUES (?)", [(p,) for p in partners])
        self._vectors = VectorStore.create(dim)
        self._ids: set[int] = set()

    def add_document(self, doc: StoredDocument, grant: Grant) -> None:
        """A document with the grant today's access rules give it."""
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                         (doc.doc_id, doc.path, doc.title, doc.content_sha, grant.rule,
                          grant.owner))
        until = grant.until.isoformat() if grant.until else None
        self._db.executemany("INSERT INTO grants VALUES (?, ?, ?)",
                             [(doc.doc_id, p, until) for p in sorted(grant.partners)])

    def add_files(self, records: Iterable[FileRecord]) -> None:
        self._db.executemany(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.path, r.size, r.mtime_ns, r.sha256, json.dumps(list(r.doc_ids)), r.status,
              r.reason) for r in records])

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for chunk in chunks:
            if chunk.chunk_id in self._ids:  # a 53-bit hash collision: refuse, never overwrite
                raise StoreError(f"duplicate chunk id {chunk.chunk_id} ({chunk.doc_id})")
            self._ids.add(chunk.chunk_id)
        self._db.executemany(
            "INSERT INTO chunks (chunk_id, doc_id, ordinal, page, char_start, char_end, text, "
            "section, ocr, text_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, c.doc_id, c.ordinal, c.page, c.char_start, c.char_end, c.text,
              c.section, int(c.ocr), text_sha(c.text)) for c in chunks],
        )
        self._vectors.add(np.array([c.chunk_id for c in chunks], dtype=np.int64), vectors)

    def publish(self, report: dict[str, object], keep: int) -> Path:
        """Sync everything, rename into place, then point CURRENT at it in one rename."""
        lexical.fill(self._db)  # the FTS5 index of this generation's chunks
        digest = lexical.content_digest(self._db)
        self._db.execute("INSERT INTO info VALUES (?, ?)", (LEXICAL_DIGEST, digest))
        self._db.commit()
        if not self._reuse_postings(digest):  # what BM25 reads (bm25.py)
            lexical.postings_of(self._db).save(self.dir / LEXICAL)
        layout = self._layout()
        self._db.close()
        self._vectors.save(self.dir, order=layout)
        (self.dir / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
        for name in (*FILES, *OPTIONAL_FILES):
            with open(self.dir / name, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(self.dir, self.final_dir)
        fsync_dir(self.final_dir.parent)
        point_current(self.root, self.name)
        prune_generations(self.root, keep)
        return self.final_dir

    def _reuse_postings(self, digest: str) -> bool:
        """Link the live generation's postings when they were exported from the same chunks:
        a nightly re-build of an unchanged corpus does not export them again."""
        live = live_generation_dir(self.root)
        if live is None or not (live / LEXICAL).is_file():
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
        return np.array([r[0] for r in self._db.execute(BY_RULE)], dtype=np.int64)

    def abort(self) -> None:
        try:
            self._db.close()
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
