"""The lexical index: SQLite FTS5 (BM25, porter stemming) over the chunks of one generation.

The indexer fills it once per generation from the `chunks` table (`fill`); the search API reads
it with `search`, which restricts matches to the caller's allowed chunk ids inside the query, so
LIMIT applies after the restriction and the result is the true top-k within what the caller may
see. Ranking is FTS5's own `bm25()`; nothing here re-implements it.

The table is contentless (`content=''`): the text is stored once, in `chunks`; FTS5 keeps only
its inverted index, keyed by rowid = chunk id.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

TABLE = "chunks_fts"
# Columns, in order: the chunk's own text, its document's title, its heading path.
COLUMNS = ("text", "title", "section")
SCHEMA = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
          f"{', '.join(COLUMNS)}, content='', tokenize='porter unicode61 remove_diacritics 2')")
# Runs of letters and digits: the same split FTS5's unicode61 tokenizer makes, so every term of
# the query is a term FTS5 can have indexed; everything else (quotes, *, -, :, ^, parentheses)
# is a separator and never reaches the FTS5 query parser.
TERM = re.compile(r"[^\W_]+")
# Lucene's English stop words (EnglishAnalyzer, Elasticsearch's `_english_`), left out of the
# query when it has other words: BM25 gives them almost no weight, yet each one matches nearly
# every chunk, and scoring every match is what a query costs (SciFact: 11,967 of 12,115 chunks
# matched by the median query with them; README "Performance").
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())


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


def match_expression(query: str) -> str:
    """Plain text -> an FTS5 query that ORs its terms, each quoted: never an FTS5 syntax error.

    Words such as AND, OR, NEAR and characters such as `"`, `*`, `-`, `:` or `(` are searched as
    the text they are, whatever their meaning in FTS5's query language. Stop words are left out
    unless the query has nothing else.
    """
    terms = TERM.findall(query.lower())
    kept = [term for term in terms if term not in STOP_WORDS] or terms
    return " OR ".join(f'"{term}"' for term in kept)


def search(db: sqlite3.Connection, query: str, allowed: Callable[[int], bool], k: int,
           weights: tuple[float, float, float]) -> list[tuple[int, float]]:
    """The k best chunks by BM25 among those `allowed` accepts, best first: (chunk id, score).

    `allowed` is evaluated by SQLite for each matching row, inside the query, before ORDER BY
    and LIMIT. Scores are FTS5's bm25() negated, so that higher is better.
    """
    expression = match_expression(query)
    if not expression or k <= 0:
        return []
    db.create_function("pks_allowed", 1, allowed, deterministic=True)
    rows = db.execute(
        f"SELECT rowid, -bm25({TABLE}, ?, ?, ?) AS score FROM {TABLE} "
        f"WHERE {TABLE} MATCH ? AND pks_allowed(rowid) ORDER BY score DESC, rowid LIMIT ?",
        (*weights, expression, k),
    ).fetchall()
    return [(int(chunk_id), float(score)) for chunk_id, score in rows]
