"""The index directory: generations of (SQLite metadata + FAISS vectors), one of them live.

Layout::

    INDEX/CURRENT                  name of the live generation (replaced atomically)
    INDEX/generations/NAME/        one complete, immutable build: meta.sqlite, vectors.faiss,
                                   report.json
    INDEX/generations/NAME.tmp/    a build in progress; never read, removed if a build died
    INDEX/keys.sqlite              API keys (search_api); outlives every generation
    INDEX/.build.lock              one build at a time

A generation is written completely, synced, renamed into place, and only then named in CURRENT,
so a crashed or killed build never touches what is being served.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from indexer import lexical
from indexer.chunk import Chunk
from indexer.load import Document
from indexer.manifest import Grant
from indexer.vectors import VectorStore

CURRENT = "CURRENT"
GENERATIONS = "generations"
META_DB = "meta.sqlite"
VECTORS = "vectors.faiss"
REPORT = "report.json"
LOCK = ".build.lock"

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
    ocr INTEGER NOT NULL DEFAULT 0);
CREATE INDEX chunks_by_doc ON chunks(doc_id);
"""


class StoreError(Exception):
    """The index directory is missing, locked or unreadable."""


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    doc_id: str
    title: str
    path: str
    page: int | None
    text: str
    section: str | None = None
    ocr: bool = False


@dataclass(frozen=True)
class GrantRows:
    """All chunk ids one grant (partner, until) covers: the raw material of allowed sets."""

    partner: str
    until: date | None
    chunk_ids: np.ndarray


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def live_generation_dir(root: Path) -> Path | None:
    """The directory CURRENT names, or None when nothing has been published yet."""
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = root / GENERATIONS / name
    return path if name and path.is_dir() else None


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """Hold the index's build lock; a second concurrent build fails instead of interleaving."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another build holds {root / LOCK}; try again when it finishes") from None
        yield


class GenerationWriter:
    """Writes one new generation beside the live one; `publish` makes it live atomically."""

    def __init__(self, root: Path, dim: int, info: dict[str, str], partners: Sequence[str]):
        self.root = root
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
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

    def add_document(self, doc: Document, grant: Grant) -> None:
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                         (doc.doc_id, doc.path, doc.title, doc.content_sha, grant.rule,
                          grant.owner))
        until = grant.until.isoformat() if grant.until else None
        self._db.executemany("INSERT INTO grants VALUES (?, ?, ?)",
                             [(doc.doc_id, p, until) for p in sorted(grant.partners)])

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for chunk in chunks:
            if chunk.chunk_id in self._ids:  # a 53-bit hash collision: refuse, never overwrite
                raise StoreError(f"duplicate chunk id {chunk.chunk_id} ({chunk.doc_id})")
            self._ids.add(chunk.chunk_id)
        self._db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, c.doc_id, c.ordinal, c.page, c.char_start, c.char_end, c.text,
              c.section, int(c.ocr)) for c in chunks],
        )
        self._vectors.add(np.array([c.chunk_id for c in chunks], dtype=np.int64), vectors)

    def publish(self, report: dict[str, object], keep: int) -> Path:
        """Sync everything, rename into place, then point CURRENT at it in one rename."""
        lexical.fill(self._db)  # the FTS5 index of this generation's chunks
        self._db.commit()
        self._db.close()
        self._vectors.save(self.dir / VECTORS)
        (self.dir / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
        for name in (META_DB, VECTORS, REPORT):
            with open(self.dir / name, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(self.dir, self.final_dir)
        _fsync_dir(self.final_dir.parent)
        pointer = self.root / f"{CURRENT}.tmp"
        pointer.write_text(self.name + "\n", encoding="utf-8")
        with open(pointer, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, self.root / CURRENT)
        _fsync_dir(self.root)
        prune_generations(self.root, keep)
        return self.final_dir

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


class Generation:
    """A published generation opened read-only: what the search API serves from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.vectors = VectorStore.load(path / VECTORS)
        db = self._db()
        self.info = dict(db.execute("SELECT key, value FROM info").fetchall())
        self.name = self.info["generation"]
        self.partners = tuple(r[0] for r in db.execute("SELECT partner FROM partners ORDER BY 1"))

    @classmethod
    def open_live(cls, root: Path) -> Generation:
        path = live_generation_dir(root)
        if path is None:
            raise StoreError(
                f"no published index in {root}; build one with "
                f"`python -m indexer build --corpus DIR --index {root}`"
            )
        return cls(path)

    def _db(self) -> sqlite3.Connection:
        """One read-only connection per thread; the file never changes once published."""
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{self.path / META_DB}?mode=ro&immutable=1"
            db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def all_chunk_ids(self) -> np.ndarray:
        rows = self._db().execute("SELECT chunk_id FROM chunks ORDER BY chunk_id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def grant_rows(self) -> list[GrantRows]:
        """Chunk ids per (partner, until): access rights are evaluated from these at query time."""
        rows = self._db().execute(
            "SELECT g.partner, g.until, c.chunk_id FROM grants g JOIN chunks c USING (doc_id) "
            "ORDER BY g.partner, g.until, c.chunk_id"
        ).fetchall()
        groups: dict[tuple[str, str | None], list[int]] = {}
        for partner, until, chunk_id in rows:
            groups.setdefault((partner, until), []).append(chunk_id)
        return [
            GrantRows(partner, date.fromisoformat(until) if until else None,
                      np.array(ids, dtype=np.int64))
            for (partner, until), ids in groups.items()
        ]

    def lexical(self, query: str, allowed: Callable[[int], bool], k: int,
                weights: tuple[float, float, float]) -> list[tuple[int, float]]:
        """BM25 top-k among the chunks `allowed` accepts (see indexer.lexical); [] for a
        generation published before it had a lexical index."""
        if not lexical.has_index(self._db()):
            return []
        return lexical.search(self._db(), query, allowed, k, weights)

    def passages(self, chunk_ids: Sequence[int]) -> dict[int, Passage]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db().execute(
            "SELECT c.chunk_id, c.doc_id, d.title, d.path, c.page, c.text, c.section, c.ocr "
            f"FROM chunks c JOIN documents d USING (doc_id) WHERE c.chunk_id IN ({marks})",
            list(chunk_ids),
        ).fetchall()
        return {row[0]: Passage(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                                bool(row[7])) for row in rows}
