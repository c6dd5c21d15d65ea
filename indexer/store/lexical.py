"""The lexical index: SQLite FTS5 (porter stemming) analyses and inverts the chunks of a
generation; its postings, exported once, are what BM25 reads at query time (bm25.py).

FTS5 stays the analyser: the writer fills it from the `chunks` table (`fill`), then exports its
postings through `fts5vocab` (`postings_of`) into the generation's lexical.npz. Queries are
analysed by the same tokenizer (`Analyzer`, read from the generation's own FTS5 schema), so a
query's stems are exactly the stems indexed. Scoring is not FTS5's: its `bm25()` only knows the
whole table's statistics, and Python's sqlite3 cannot give it others (an FTS5 auxiliary function
needs the C API), whereas a caller must be scored with the statistics of what it may see.
Turning a person's query into terms is the search API's business (search_api/retrieval/
lexical.py); this module takes terms.

The table is contentless (`content=''`): the text is stored once, in `chunks`; FTS5 keeps only
its inverted index, keyed by rowid = chunk id.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from indexer.store.bm25 import Postings

TABLE = "chunks_fts"
# Columns, in order: the chunk's own text, its document's title, its heading path.
COLUMNS = ("text", "title", "section")
TOKENIZE = "porter unicode61 remove_diacritics 2"
SCHEMA = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
          f"{', '.join(COLUMNS)}, content='', tokenize='{TOKENIZE}')")
_TOKENIZE_RE = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
MAX_COUNT = np.iinfo(np.uint16).max  # a term's count in one column saturates here


def fill(db: sqlite3.Connection) -> int:
    """Index every chunk of a generation being written; returns the number of rows indexed."""
    db.execute(SCHEMA)
    cursor = db.execute(
        f"INSERT INTO {TABLE}(rowid, {', '.join(COLUMNS)}) "
        "SELECT c.chunk_id, c.text, d.title, coalesce(c.section, '') "
        "FROM chunks c JOIN documents d USING (doc_id)"
    )
    return cursor.rowcount


def has_index(db: sqlite3.Connection) -> bool:
    """Generations published before the lexical index existed have none."""
    row = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
    return row is not None


def tokenizer_of(db: sqlite3.Connection) -> str:
    """The `tokenize` argument the generation's FTS5 table was created with."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
    found = _TOKENIZE_RE.search(row[0]) if row else None
    return found.group(1).replace("''", "'") if found else "unicode61"  # FTS5's default


def postings_of(db: sqlite3.Connection) -> Postings:
    """Export the FTS5 index's postings: per term, the chunks holding it and how often in each
    column; per chunk, its length in tokens. Reads FTS5's own analysis, so nothing here decides
    what a token is. Works on a read-only connection (the vocabulary table is temporary)."""
    chunk_ids = np.array([r[0] for r in db.execute("SELECT chunk_id FROM chunks ORDER BY 1")],
                         dtype=np.int64)
    row_of = {int(c): i for i, c in enumerate(chunk_ids)}
    column_of = {name: i for i, name in enumerate(COLUMNS)}
    db.execute("DROP TABLE IF EXISTS temp.pks_postings")
    db.execute(f"CREATE VIRTUAL TABLE temp.pks_postings USING fts5vocab(main, {TABLE}, instance)")
    terms: list[bytes] = []
    starts: list[int] = []
    rows: list[int] = []
    counts: list[list[int]] = []
    last_term, last_doc = None, None
    try:
        cursor = db.execute("SELECT term, doc, col, count(*) FROM temp.pks_postings "
                            "GROUP BY term, doc, col ORDER BY term, doc")
        for term, doc, col, count in cursor:
            if term != last_term:
                terms.append(term.encode("utf-8"))
                starts.append(len(rows))
                last_term, last_doc = term, None
            if doc != last_doc:
                rows.append(row_of[doc])
                counts.append([0] * len(COLUMNS))
                last_doc = doc
            counts[-1][column_of[col]] = min(count, MAX_COUNT)
    finally:
        db.execute("DROP TABLE temp.pks_postings")
    starts.append(len(rows))
    row_array = np.array(rows, dtype=np.int32)
    count_array = np.array(counts, dtype=np.uint16).reshape(-1, len(COLUMNS))
    lengths = np.zeros(chunk_ids.size, dtype=np.int64)
    np.add.at(lengths, row_array, count_array.sum(axis=1, dtype=np.int64))
    offsets = np.cumsum([0] + [len(t) for t in terms], dtype=np.int64)
    blob = np.frombuffer(b"".join(terms), dtype=np.uint8)
    return Postings(chunk_ids, lengths, blob, offsets, np.array(starts, dtype=np.int64),
                    row_array, count_array)


class Analyzer:
    """Query terms -> the tokens the index holds, by the index's own FTS5 tokenizer (porter
    stems, folded diacritics) run on an in-memory table, one per thread."""

    def __init__(self, tokenize: str) -> None:
        self.tokenize = tokenize
        self._local = threading.local()
        self.tokens = lru_cache(maxsize=4096)(self._tokens)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
            quoted = self.tokenize.replace("'", "''")
            db.execute(f"CREATE VIRTUAL TABLE q USING fts5(t, tokenize='{quoted}')")
            db.execute("CREATE VIRTUAL TABLE temp.qv USING fts5vocab(main, q, instance)")
            self._local.db = db
        return db

    def _tokens(self, terms: tuple[str, ...]) -> tuple[str, ...]:
        """Each term's tokens, in order (a term of several tokens gives each of them)."""
        db = self._db()
        try:
            db.executemany("INSERT INTO q(rowid, t) VALUES (?, ?)", enumerate(terms))
            found = db.execute("SELECT term FROM qv ORDER BY doc, offset").fetchall()
        finally:
            db.rollback()  # the table stays empty
        return tuple(term for (term,) in found)

    def __call__(self, terms: Sequence[str]) -> tuple[str, ...]:
        """Terms that are not text (a lone surrogate has no UTF-8 form) match nothing."""
        return self.tokens(tuple(t for t in terms if _encodable(t)))


def _encodable(term: str) -> bool:
    try:
        term.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
