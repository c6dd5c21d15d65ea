"""The lexical index: SQLite FTS5 (BM25, porter stemming) over the chunks of one generation.

The writer fills it once per generation from the `chunks` table (`fill`); the reader searches it
with `search`, which restricts matches to the caller's allowed chunk ids inside the query, so
LIMIT applies after the restriction and the result is the true top-k within what the caller may
see. Ranking is FTS5's own `bm25()`; nothing here re-implements it. Turning a person's query
into terms is the search API's business (search_api/retrieval/lexical.py); this module takes
terms.

The table is contentless (`content=''`): the text is stored once, in `chunks`; FTS5 keeps only
its inverted index, keyed by rowid = chunk id.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence

import numpy as np

TABLE = "chunks_fts"
# Columns, in order: the chunk's own text, its document's title, its heading path.
COLUMNS = ("text", "title", "section")
SCHEMA = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
          f"{', '.join(COLUMNS)}, content='', tokenize='porter unicode61 remove_diacritics 2')")


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


def any_of(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of the terms, each a quoted string: never FTS5 syntax."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms if term)


class Memberships:
    """Constant-time membership tests of allowed sets, which SQLite calls per matching row.

    Kept per array for as long as the array lives (the server caches each allowed set per
    partner and day), so the hash set is built once per allowed set, not per query.
    """

    def __init__(self) -> None:
        self._tests: dict[int, tuple[weakref.ref[np.ndarray], Callable[[int], bool]]] = {}
        self._lock = threading.Lock()

    def test(self, allowed: np.ndarray) -> Callable[[int], bool]:
        key = id(allowed)
        cached = self._tests.get(key)
        if cached is not None and cached[0]() is allowed:
            return cached[1]
        test = frozenset(allowed.tolist()).__contains__
        with self._lock:
            self._tests[key] = (weakref.ref(allowed), test)
        weakref.finalize(allowed, self._forget, key)
        return test

    def _forget(self, key: int) -> None:
        with self._lock:
            self._tests.pop(key, None)


def search(db: sqlite3.Connection, terms: Sequence[str], allowed: Callable[[int], bool], k: int,
           weights: tuple[float, float, float]) -> list[tuple[int, float]]:
    """The k best chunks by BM25 among those `allowed` accepts, best first: (chunk id, score).

    `allowed` is evaluated by SQLite for each matching row, inside the query, before ORDER BY
    and LIMIT. Scores are FTS5's bm25() negated, so that higher is better.
    """
    expression = any_of(terms)
    if not expression or k <= 0:
        return []
    db.create_function("pks_allowed", 1, allowed, deterministic=True)
    rows = db.execute(
        f"SELECT rowid, -bm25({TABLE}, ?, ?, ?) AS score FROM {TABLE} "
        f"WHERE {TABLE} MATCH ? AND pks_allowed(rowid) ORDER BY score DESC, rowid LIMIT ?",
        (*weights, expression, k),
    ).fetchall()
    return [(int(chunk_id), float(score)) for chunk_id, score in rows]
