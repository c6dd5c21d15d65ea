"""Reading a published generation: what the search API serves from and what the next build
reuses. A generation never changes once published, so every connection is read-only and
immutable; the layout is in layout.py, the rows in records.py.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexer.store import lexical
from indexer.store.bm25 import LexicalStats, Postings
from indexer.store.layout import LEXICAL, META_DB, SHARDS, StoreError, live_generation_dir
from indexer.store.records import (
    Chunk,
    ChunkSpan,
    DocumentRow,
    FileRecord,
    GrantRows,
    Passage,
    StoredDocument,
    decode_breaks,
    text_sha,
)
from indexer.store.vectors import PACK_BUDGET, VectorStore


def live_partners(root: Path) -> tuple[str, ...]:
    """The partner ids of the live generation, without loading its vectors (`keys create`)."""
    path = live_generation_dir(root)
    if path is None:
        raise StoreError(f"no published index in {root}; build one with "
                         f"`python -m indexer build --corpus DIR --index {root}`")
    uri = f"file:{path / META_DB}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        return tuple(r[0] for r in db.execute("SELECT partner FROM partners ORDER BY 1"))


class Generation:
    """A published generation opened read-only: what the search API serves from."""

    def __init__(self, path: Path, pack_budget: float = PACK_BUDGET) -> None:
        self.path = path
        self._local = threading.local()
        self._lexical: tuple[Postings, lexical.Analyzer] | None = None
        self._lexical_lock = threading.Lock()
        self._analyzer: lexical.Analyzer | None = None
        self._owners: dict[str, tuple[str, ...]] | None = None
        db = self._db()
        self._by_rule = "INDEXED BY documents_by_rule" if db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'documents_by_rule'").fetchone() else ""
        self.info = dict(db.execute("SELECT key, value FROM info").fetchall())
        self.name = self.info["generation"]
        self.partners = tuple(r[0] for r in db.execute("SELECT partner FROM partners ORDER BY 1"))
        self.shard_count = int(self.info.get("shards", "1"))
        # Chunks keep their page breaks from this generation's format on; older ones have none
        # (each of their chunks is cited by the page it starts on).
        self._breaks = "page_breaks" in {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
        self._pack_budget = pack_budget
        self._vectors = VectorStore.load(path, pack_budget) if self.shard_count == 1 else None
        if self._vectors is not None and self._vectors.ann is not None:  # read by group
            self._vectors.groups = lexical.group_rows(db, len(self._vectors))
        self._shards: tuple[Generation, ...] | None = None
        self._shards_lock = threading.Lock()

    @property
    def vectors(self) -> VectorStore:
        """This store's vectors; a sharded generation's are in its shards (`shards()`)."""
        if self._vectors is None:
            raise StoreError(f"generation {self.name} is sharded ({self.shard_count} shards): "
                             "its vectors are searched shard by shard")
        return self._vectors

    @property
    def sharded(self) -> bool:
        return self.shard_count > 1

    def shard_paths(self) -> list[Path]:
        """The directories of this generation's shards (itself, when it is not sharded)."""
        if not self.sharded:
            return [self.path]
        return [self.path / SHARDS / str(i) for i in range(self.shard_count)]

    def shards(self) -> tuple[Generation, ...]:
        """Each shard opened as a store of its own (itself when not sharded), on first use."""
        if self._shards is None:
            with self._shards_lock:
                if self._shards is None:
                    self._shards = (self,) if not self.sharded else \
                        tuple(Generation(p, self._pack_budget) for p in self.shard_paths())
        return self._shards

    def stored_vectors(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Stored vectors of these ids, in order, from whichever shard holds each (KeyError
        if one is not stored): lets a rebuild reuse unchanged embeddings."""
        ids = np.asarray(chunk_ids, dtype=np.int64).reshape(-1)
        if not self.sharded:
            return self.vectors.vectors(ids)
        stores = [shard.vectors for shard in self.shards()]
        out = np.zeros((ids.size, stores[0].dim), dtype=np.float32)
        found = np.zeros(ids.size, dtype=bool)
        for store in stores:
            here = store.contains(ids)
            out[here] = store.vectors(ids[here])
            found |= here
        if not found.all():
            raise KeyError(f"{int((~found).sum())} chunk ids are not stored "
                           f"(e.g. {int(ids[~found][0])})")
        return out

    @classmethod
    def open_live(cls, root: Path, pack_budget: float = PACK_BUDGET) -> Generation:
        path = live_generation_dir(root)
        if path is None:
            raise StoreError(
                f"no published index in {root}; build one with "
                f"`python -m indexer build --corpus DIR --index {root}`"
            )
        return cls(path, pack_budget)

    def _db(self) -> sqlite3.Connection:
        """One read-only connection per thread; the file never changes once published."""
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{self.path / META_DB}?mode=ro&immutable=1"
            db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def all_chunk_ids(self) -> np.ndarray:
        rows = self._db().execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")
        return np.fromiter((row[0] for row in rows), dtype=np.int64)  # no list of every row

    def chunk_documents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk id, ascending, and its document's row number: which chunks share a
        document, held in memory by the server so a query asks SQLite nothing for it."""
        rows = self._db().execute("SELECT c.chunk_id, d.rowid FROM chunks c JOIN documents d "
                                  "USING (doc_id) ORDER BY c.chunk_id")
        pairs = np.fromiter(rows, dtype=[("chunk", np.int64), ("document", np.int64)])
        return np.ascontiguousarray(pairs["chunk"]), np.ascontiguousarray(pairs["document"])

    def grant_rows(self) -> list[GrantRows]:
        """Chunk ids per (partner, until): access rights are evaluated from these at query time."""
        rows = self._db().execute(
            "SELECT g.partner, g.until, c.chunk_id FROM grants g JOIN chunks c USING (doc_id) "
            "ORDER BY g.partner, g.until, c.chunk_id")
        groups = _ids_by(((partner, until), chunk_id) for partner, until, chunk_id in rows)
        return [GrantRows(partner, date.fromisoformat(until) if until else None, ids)
                for (partner, until), ids in groups.items()]

    def grant_groups(self) -> list[GrantRows]:
        """Chunk ids per (partner, until, access rule): what a partner may see, and in which
        access groups (the rules, each a run of rows of the postings and vectors)."""
        rows = self._db().execute(
            "SELECT g.partner, g.until, d.rule, c.chunk_id FROM grants g JOIN documents d "
            "USING (doc_id) JOIN chunks c USING (doc_id) ORDER BY 1, 2, 3, 4")
        groups = _ids_by(((partner, until, rule), chunk_id)
                         for partner, until, rule, chunk_id in rows)
        return [GrantRows(partner, date.fromisoformat(until) if until else None, ids, rule)
                for (partner, until, rule), ids in groups.items()]

    def rules(self) -> tuple[int | None, ...]:
        """Every access group of this generation: its rules, and None for the documents no
        rule covers (admins only)."""
        return tuple(r[0] for r in self._db().execute(
            "SELECT DISTINCT rule FROM documents ORDER BY rule IS NULL, rule"))

    def lexical_index(self) -> tuple[Postings, lexical.Analyzer] | None:
        """The BM25 postings and the index's query analyser, loaded on first use (the server
        loads them before it serves the generation). Generations written before lexical.npz
        existed have them computed from their FTS5 index; those before FTS5 have none."""
        if self._lexical is None:
            with self._lexical_lock:
                if self._lexical is None:
                    db = self._db()
                    if not lexical.has_index(db):
                        return None
                    path = self.path / LEXICAL
                    postings = Postings.load(path, lambda rows: lexical.group_rows(db, rows)) \
                        if path.is_file() else lexical.postings_of(db)
                    self._lexical = (postings, lexical.Analyzer(
                        lexical.tokenizer_of(db), lexical.FOLDING_KEY in self.info))
        return self._lexical

    def analyzer(self) -> lexical.Analyzer:
        """How this generation turns text into the terms its lexical index holds: what a
        citation compares a query with (search_api/retrieval/citing.py). The top level of a
        sharded generation has no lexical index of its own: its shards, written by the same
        build, analyse with the tokenizer every generation with a lexical index was written
        with, folded when the build recorded its folding."""
        found = self.lexical_index()
        if found is not None:
            return found[1]
        if self._analyzer is None:
            self._analyzer = lexical.Analyzer(lexical.TOKENIZE, lexical.FOLDING_KEY in self.info)
        return self._analyzer

    def lexical_stats(self, terms: Sequence[str], allowed: np.ndarray) -> LexicalStats:
        """BM25's statistics over the sorted chunk ids `allowed` only: how many there are,
        their length, and how many hold each of the terms (keyed by indexed token). Stats of
        disjoint sets add up (`a + b`): shards count their part, then all score with the sum."""
        found = self.lexical_index()
        if found is None:
            return LexicalStats()
        postings, analyze = found
        return postings.stats(analyze(terms), allowed)

    def lexical_search(self, terms: Sequence[str], allowed: np.ndarray, k: int,
                       weights: tuple[float, float, float],
                       stats: LexicalStats) -> list[tuple[int, float]]:
        """BM25 top-k, (chunk id, score) best first, of the chunks of `allowed` holding any of
        the terms, scored with `stats` (the caller's own: `lexical_stats`, or their sum over
        shards); [] for a generation published before it had a lexical index."""
        found = self.lexical_index()
        if found is None:
            return []
        postings, analyze = found
        return postings.search(analyze(terms), allowed, k, weights, stats)

    def passages(self, chunk_ids: Sequence[int]) -> dict[int, Passage]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        breaks = "c.page_breaks" if self._breaks else "NULL"
        rows = self._db().execute(
            "SELECT c.chunk_id, c.doc_id, d.title, d.path, c.page, c.text, c.section, c.ocr, "
            f"{breaks} FROM chunks c JOIN documents d USING (doc_id) "
            f"WHERE c.chunk_id IN ({marks})", list(chunk_ids),
        ).fetchall()
        return {row[0]: _passage(row) for row in rows}

    def chunk_spans(self, chunk_ids: Sequence[int]) -> dict[int, ChunkSpan]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db().execute(
            "SELECT chunk_id, doc_id, ordinal, page, char_start, char_end FROM chunks "
            f"WHERE chunk_id IN ({marks})", list(chunk_ids)).fetchall()
        return {row[0]: ChunkSpan(*row) for row in rows}

    def first_chunk_id(self, doc_id: str) -> int | None:
        """One indexed read: the document's first chunk id, None for an unknown document."""
        row = self._db().execute("SELECT chunk_id FROM chunks WHERE doc_id = ? "
                                 "ORDER BY ordinal LIMIT 1", (doc_id,)).fetchone()
        return None if row is None else int(row[0])

    def first_chunk_in(self, doc_id: str, rules: Sequence[int]) -> int | None:
        """The document's first chunk id if it is in one of these access groups, else None.
        One index probe per group, (rule, doc_id) of documents_by_rule: a document of another
        group and one that exists nowhere are each a miss in every probe, the same work."""
        marks = ",".join("?" * len(rules))
        # The index is named: SQLite would rather probe the primary key, which finds a document
        # of any group (generations from before the index have only that; rebuild them).
        row = self._db().execute(
            "SELECT (SELECT chunk_id FROM chunks WHERE doc_id = d.doc_id ORDER BY ordinal "
            f"LIMIT 1) FROM documents d {self._by_rule} WHERE d.rule IN ({marks}) AND d.doc_id = ?",
            (*rules, doc_id)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

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

    def file_digest(self, path: str) -> str | None:
        """SHA-256 of the source file as indexed (None for an index built before it was kept)."""
        try:
            row = self._db().execute("SELECT sha256 FROM files WHERE path = ?",
                                     (path,)).fetchone()
        except sqlite3.OperationalError:  # a generation written before the table existed
            return None
        return row[0] if row else None

    def chunk_paths(self) -> dict[int | None, list[tuple[str, np.ndarray]]]:
        """Per access group (rule; None: no rule), every document path in it with the chunk
        ids of the documents read from it: `within` matches only the groups a caller sees."""
        rows = self._db().execute(
            "SELECT d.rule, d.path, c.chunk_id FROM chunks c JOIN documents d USING (doc_id) "
            "ORDER BY d.rule, d.path, c.chunk_id")
        out: dict[int | None, list[tuple[str, np.ndarray]]] = {}
        for (rule, path), ids in _ids_by(((rule, path), chunk_id)
                                         for rule, path, chunk_id in rows).items():
            out.setdefault(rule, []).append((path, ids))
        return out

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

    def owner_counts(self) -> dict[str, int]:
        """How many documents each owner owns here: whether a key's page links to its
        documents' receipts, and which owners an admin's view spans."""
        return {owner: len(docs) for owner, docs in self.owned_documents().items()}

    def owned_documents(self) -> dict[str, tuple[str, ...]]:
        """The documents each owner owns here: where its receipts are. Read once: a
        generation never changes."""
        if self._owners is None:
            rows = self._db().execute("SELECT owner, doc_id FROM documents WHERE owner IS NOT "
                                      "NULL ORDER BY owner, doc_id")
            owned: dict[str, list[str]] = {}
            for owner, doc_id in rows:
                owned.setdefault(str(owner), []).append(doc_id)
            self._owners = {owner: tuple(docs) for owner, docs in owned.items()}
        return self._owners

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
                "SELECT chunk_id, doc_id, ordinal, page, char_start, char_end, text, section, ocr, "
                f"{'page_breaks' if self._breaks else 'NULL'} "
                f"FROM chunks WHERE doc_id IN ({marks}) ORDER BY doc_id, ordinal", batch)
            for r in rows:
                out[r[1]].append(Chunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]),
                                       decode_breaks(r[9])))
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


def _passage(row: tuple[Any, ...]) -> Passage:
    """A passage from its row: (chunk id, doc id, title, path, page, text, section, ocr, page
    breaks), cited by the page it starts on."""
    breaks = decode_breaks(row[8])
    pages = (row[4], breaks[-1][1]) if breaks and row[4] is not None else None
    return Passage(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]),
                   pages, breaks)


def _batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """SQLite caps the number of '?' in one statement."""
    for first in range(0, len(items), size):
        yield items[first:first + size]


K = TypeVar("K")


def _ids_by(rows: Iterable[tuple[K, int]]) -> dict[K, np.ndarray]:
    """Chunk ids grouped by key, streamed into 8-byte arrays: a list of every row first held
    ~100 bytes a row at once (grants of 50 partners x 183,000 chunks: 1.7 GB at the peak)."""
    groups: dict[K, array[int]] = {}
    for key, chunk_id in rows:
        groups.setdefault(key, array("q")).append(chunk_id)
    return {key: np.frombuffer(ids, dtype=np.int64) for key, ids in groups.items()}
