"""The index directory: generations of (SQLite metadata + FAISS vectors), one of them live.

Layout::

    INDEX/CURRENT                  name of the live generation (replaced atomically)
    INDEX/generations/NAME/        one complete, immutable build: meta.sqlite, vectors.faiss,
                                   report.json (NAME sorts by build time)
    INDEX/generations/NAME.tmp/    a build in progress; never read, removed if a build died
    INDEX/keys.sqlite              API keys (search_api); outlives every generation
    INDEX/.build.lock              one build at a time (indexer/lock.py)

A generation is written completely, synced, renamed into place, and only then named in CURRENT,
so a crashed or killed build never touches what is being served.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
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
class ChunkSpan:
    """Where a chunk sits in its document: to merge neighbours and rebuild a page's text."""

    chunk_id: int
    doc_id: str
    ordinal: int  # position within the document
    page: int | None
    char_start: int  # offsets into the page text
    char_end: int


@dataclass(frozen=True)
class FileRecord:
    """One corpus file as a generation saw it: lets the next build skip it when unchanged.

    status is "indexed" (parsed this build or carried over unchanged) or "kept" (it failed this
    build, so its previous documents were carried over; size/mtime/sha are the good version's).
    """

    path: str
    size: int
    mtime_ns: int
    sha256: str
    doc_ids: tuple[str, ...]
    status: str = "indexed"
    reason: str | None = None


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    path: str
    title: str
    content_sha: str


def text_sha(text: str) -> str:
    """Key of an embedding: the exact text embedded (the model is checked per generation)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GrantRows:
    """All chunk ids one grant (partner, until) covers: the raw material of allowed sets."""

    partner: str
    until: date | None
    chunk_ids: np.ndarray


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    path: str
    title: str
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


def point_current(root: Path, name: str) -> None:
    """Make generation `name` live in one atomic rename (publish and rollback)."""
    pointer = root / f"{CURRENT}.tmp"
    pointer.write_text(name + "\n", encoding="utf-8")
    with open(pointer, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer, root / CURRENT)
    _fsync_dir(root)


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

    def add_document(self, doc: Document, grant: Grant) -> None:
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                         (doc.doc_id, doc.path, doc.title, doc.content_sha, grant.rule,
                          grant.owner))
        until = grant.until.isoformat() if grant.until else None
        self._db.executemany("INSERT INTO grants VALUES (?, ?, ?)",
                             [(doc.doc_id, p, until) for p in sorted(grant.partners)])

    def add_document_row(self, doc: StoredDocument, grant: Grant) -> None:
        """A document carried over from an earlier generation, with today's grant."""
        self.add_document(Document(doc.doc_id, doc.path, doc.title, (), doc.content_sha), grant)

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
        self._db.commit()
        layout = self._layout()
        self._db.close()
        self._vectors.save(self.dir / VECTORS, order=layout)
        (self.dir / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
        for name in (META_DB, VECTORS, REPORT):
            with open(self.dir / name, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(self.dir, self.final_dir)
        _fsync_dir(self.final_dir.parent)
        point_current(self.root, self.name)
        prune_generations(self.root, keep)
        return self.final_dir

    def _layout(self) -> np.ndarray:
        """Chunk ids by access rule, then document: a partner's chunks lie in a few contiguous
        runs of vector rows, so searching what it may see reads only those (indexer/planner.py)."""
        rows = self._db.execute(
            "SELECT c.chunk_id FROM chunks c JOIN documents d USING (doc_id) "
            "ORDER BY d.rule IS NULL, d.rule, c.doc_id, c.ordinal").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

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

    def chunk_spans(self, chunk_ids: Sequence[int]) -> dict[int, ChunkSpan]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db().execute(
            "SELECT chunk_id, doc_id, ordinal, page, char_start, char_end FROM chunks "
            f"WHERE chunk_id IN ({marks})", list(chunk_ids)).fetchall()
        return {row[0]: ChunkSpan(*row) for row in rows}

    def document_chunk_ids(self, doc_id: str) -> list[int]:
        """A document's chunk ids in reading order (empty for an unknown document)."""
        rows = self._db().execute("SELECT chunk_id FROM chunks WHERE doc_id = ? ORDER BY ordinal",
                                  (doc_id,)).fetchall()
        return [row[0] for row in rows]

    def document(self, doc_id: str) -> DocumentRow | None:
        """One document's path, title and chunk ids (None if the id is unknown)."""
        db = self._db()
        row = db.execute("SELECT path, title FROM documents WHERE doc_id = ?",
                         (doc_id,)).fetchone()
        if row is None:
            return None
        ids = [r[0] for r in db.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?",
                                        (doc_id,))]
        return DocumentRow(doc_id, row[0], row[1], np.array(ids, dtype=np.int64))

    def document_text(self, doc_id: str) -> str:
        """A document's indexed text, rebuilt from its chunks (overlaps merged, pages joined)."""
        rows = self._db().execute(
            "SELECT page, char_start, text FROM chunks WHERE doc_id = ? ORDER BY ordinal",
            (doc_id,)).fetchall()
        pages: dict[int | None, str] = {}
        for page, start, text in rows:
            done = pages.get(page, "")
            if start >= len(done):
                pages[page] = done + ("\n\n" if done else "") + text
            elif start + len(text) > len(done):
                pages[page] = done + text[len(done) - start:]
        return "\n\n".join(pages.values())

    def file_digest(self, path: str) -> str | None:
        """SHA-256 of the source file as indexed (None for an index built before it was kept)."""
        try:
            row = self._db().execute("SELECT sha256 FROM files WHERE path = ?",
                                     (path,)).fetchone()
        except sqlite3.OperationalError:  # a generation written before the table existed
            return None
        return row[0] if row else None

    def chunk_paths(self) -> list[tuple[str, np.ndarray]]:
        """Every document path with the chunk ids of the documents read from it."""
        rows = self._db().execute(
            "SELECT d.path, c.chunk_id FROM chunks c JOIN documents d USING (doc_id) "
            "ORDER BY d.path, c.chunk_id").fetchall()
        groups: dict[str, list[int]] = {}
        for path, chunk_id in rows:
            groups.setdefault(path, []).append(chunk_id)
        return [(path, np.array(ids, dtype=np.int64)) for path, ids in groups.items()]

    def grants_of(self, doc_ids: Sequence[str]) -> dict[str, list[tuple[str, date | None]]]:
        """(partner, until) of each document's grants: what admins see as `visible_to`."""
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        rows = self._db().execute(
            f"SELECT doc_id, partner, until FROM grants WHERE doc_id IN ({marks}) "
            "ORDER BY doc_id, partner", list(doc_ids)).fetchall()
        out: dict[str, list[tuple[str, date | None]]] = {}
        for doc_id, partner, until in rows:
            out.setdefault(doc_id, []).append(
                (partner, date.fromisoformat(until) if until else None))
        return out
    def document_owners(self, doc_ids: Sequence[str]) -> dict[str, str | None]:
        """Owner (access.yaml `owner`) of each known document: what the audit records."""
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        rows = self._db().execute(
            f"SELECT doc_id, owner FROM documents WHERE doc_id IN ({marks})", list(doc_ids)
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) in this generation, for the operators' metrics."""
        db = self._db()
        documents = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(documents), int(chunks)

    # --- what the next build reuses from this generation (indexer/incremental.py) ---

    def _has(self, table: str, column: str | None = None) -> bool:
        cols = [r[1] for r in self._db().execute(f"PRAGMA table_info({table})")]
        return bool(cols) and (column is None or column in cols)

    def file_records(self) -> dict[str, FileRecord]:
        """Files this generation indexed, by relative path; empty for a pre-`files` index."""
        if not self._has("files"):
            return {}
        rows = self._db().execute("SELECT path, size, mtime_ns, sha256, doc_ids, status, reason "
                                  "FROM files").fetchall()
        return {r[0]: FileRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6])
                for r in rows}

    def document_shas(self) -> dict[str, str]:
        """doc id -> content sha: tells added, changed and deleted documents apart."""
        return dict(self._db().execute("SELECT doc_id, content_sha FROM documents").fetchall())

    def stored_documents(self, doc_ids: Sequence[str]) -> dict[str, StoredDocument]:
        out: dict[str, StoredDocument] = {}
        for batch in _batches(list(doc_ids)):
            marks = ",".join("?" * len(batch))
            for row in self._db().execute("SELECT doc_id, path, title, content_sha FROM documents "
                                          f"WHERE doc_id IN ({marks})", batch):
                out[row[0]] = StoredDocument(*row)
        return out

    def chunks_of(self, doc_ids: Sequence[str]) -> dict[str, list[Chunk]]:
        """The chunks of these documents, in document order."""
        out: dict[str, list[Chunk]] = {d: [] for d in doc_ids}
        for batch in _batches(list(doc_ids)):
            marks = ",".join("?" * len(batch))
            rows = self._db().execute(
                "SELECT chunk_id, doc_id, ordinal, page, char_start, char_end, text, section, ocr "
                f"FROM chunks WHERE doc_id IN ({marks}) ORDER BY doc_id, ordinal", batch)
            for r in rows:
                out[r[1]].append(Chunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8])))
        return out

    def chunk_ids_by_text(self, texts: Sequence[str]) -> dict[str, int]:
        """text -> id of a stored chunk with exactly that text, for the texts found here."""
        wanted = {text_sha(t): t for t in texts}
        found: dict[str, int] = {}
        if not self._has("chunks", "text_sha"):  # an index from before text_sha: hash in memory
            for chunk_id, text in self._db().execute("SELECT chunk_id, text FROM chunks"):
                if (sha := text_sha(text)) in wanted:
                    found[wanted[sha]] = chunk_id
            return found
        for batch in _batches(list(wanted)):
            marks = ",".join("?" * len(batch))
            for sha, chunk_id in self._db().execute(
                    f"SELECT text_sha, chunk_id FROM chunks WHERE text_sha IN ({marks})", batch):
                found[wanted[sha]] = chunk_id
        return found


def _batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """SQLite caps the number of '?' in one statement."""
    for first in range(0, len(items), size):
        yield items[first:first + size]
