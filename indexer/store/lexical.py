"""The lexical index: SQLite FTS5 (porter stemming) analyses and inverts the chunks of a
generation; its postings, exported once, are what BM25 reads at query time (bm25.py).

FTS5 stays the analyser: the writer fills it from the `chunks` table (`fill`), folded
(folding.py: accents, ß, ligatures), then exports its postings through `fts5vocab`
(`postings_of`) into the generation's lexical.npz. Queries are folded and analysed the same way
(`Analyzer`, with the tokenizer read from the generation's own FTS5 schema), so a query's stems
are exactly the stems indexed. Scoring is not FTS5's: its `bm25()` only knows the
whole table's statistics, and Python's sqlite3 cannot give it others (an FTS5 auxiliary function
needs the C API), whereas a caller must be scored with the statistics of what it may see.
Turning a person's query into terms is the search API's business (search_api/retrieval/
lexical.py); this module takes terms.

The table is contentless (`content=''`): the text is stored once, in `chunks`; FTS5 keeps only
its inverted index, keyed by rowid = chunk id.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np

from indexer.store.bm25 import Postings
from indexer.store.folding import FOLDING, fold
from indexer.store.layout import BY_RULE, RULE_SIZES

TABLE = "chunks_fts"
# Columns, in order: the chunk's own text, its document's title, its heading path.
COLUMNS = ("text", "title", "section")
TOKENIZE = "porter unicode61 remove_diacritics 2"
SCHEMA = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
          f"{', '.join(COLUMNS)}, content='', tokenize='{TOKENIZE}')")
_TOKENIZE_RE = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
MAX_COUNT = np.iinfo(np.uint16).max  # a term's count in one column saturates here
FOLDING_KEY = "lexical_folding"  # info key: how the generation's chunks were folded (folding.py)
# The postings' format: 2 since they are partitioned by access group (bm25.py). Part of the
# content digest, so a build never links postings of another format from the live generation.
POSTINGS_FORMAT = "2"


def fill(db: sqlite3.Connection) -> int:
    """Index every chunk of a generation being written, folded (folding.py) so that a query
    without accents finds the words with them; returns the number of rows indexed."""
    db.execute(SCHEMA)
    db.create_function("pks_fold", 1, fold, deterministic=True)
    cursor = db.execute(
        f"INSERT INTO {TABLE}(rowid, {', '.join(COLUMNS)}) "
        "SELECT c.chunk_id, pks_fold(c.text), pks_fold(d.title), pks_fold(coalesce(c.section, "
        "'')) FROM chunks c JOIN documents d USING (doc_id)"
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


def content_digest(db: sqlite3.Connection) -> str:
    """What a generation's postings are a function of: the tokenizer, the order of rows, and
    every chunk's id, text (by its sha), title and heading path. Equal digests, equal postings:
    an unchanged re-build reuses the previous generation's instead of exporting them again."""
    # the analysis, the row order and its groups, the postings' format
    digest = hashlib.sha256((SCHEMA + FOLDING + BY_RULE + RULE_SIZES + POSTINGS_FORMAT)
                            .encode("utf-8"))
    rows = db.execute("SELECT c.chunk_id, c.text_sha, d.title, coalesce(c.section, '') "
                      "FROM chunks c JOIN documents d USING (doc_id) ORDER BY c.chunk_id")
    for row in rows:
        digest.update(repr(row).encode("utf-8", "backslashreplace"))
    return digest.hexdigest()


def group_rows(db: sqlite3.Connection, rows: int) -> np.ndarray:
    """Where each access group's rows begin in layout order (and where the last ends): one
    group per access rule, and one of the documents no rule covers (admins only). A generation
    from before rules were recorded is one group."""
    try:
        sizes = [r[0] for r in db.execute(RULE_SIZES)]
    except sqlite3.OperationalError:
        sizes = [rows]
    bounds = np.cumsum([0, *sizes], dtype=np.int64)
    if int(bounds[-1]) != rows:
        raise ValueError(f"the access groups hold {int(bounds[-1])} chunks, the postings {rows}")
    return bounds


def postings_of(db: sqlite3.Connection) -> Postings:
    """Export the FTS5 index's postings: per access group and term, the chunks holding it and
    how often in each column; per chunk, its length in tokens. Reads FTS5's own analysis, so
    nothing here decides what a token is (nor how the groups are formed: they are row ranges).
    Works on a read-only connection (the vocabulary tables are temporary).

    fts5vocab lists every token instance, by term, then chunk, then column; SQLite hands them
    over as one string of integers (chunk id * 4 + column) and numpy counts the runs: about a
    sixth of the time of grouping them in SQL and reading one row per posting.
    """
    try:  # rows by access rule, as the vectors' (a partner's chunks in a few runs of rows)
        chunk_ids = np.array([r[0] for r in db.execute(BY_RULE)], dtype=np.int64)
    except sqlite3.OperationalError:  # a generation from before rules were recorded
        chunk_ids = np.array([r[0] for r in db.execute("SELECT chunk_id FROM chunks")],
                             dtype=np.int64)
    for kind in ("row", "instance"):
        db.execute(f"DROP TABLE IF EXISTS temp.pks_{kind}")
        db.execute(f"CREATE VIRTUAL TABLE temp.pks_{kind} USING fts5vocab(main, {TABLE}, {kind})")
    column = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(COLUMNS))
    try:
        vocabulary = db.execute("SELECT term, doc, cnt FROM temp.pks_row").fetchall()
        (listed,) = db.execute(f"SELECT group_concat(doc * 4 + CASE col {column} END) "
                               "FROM temp.pks_instance").fetchone()
    finally:
        for kind in ("row", "instance"):
            db.execute(f"DROP TABLE temp.pks_{kind}")
    keys = np.array(listed.split(","), dtype=np.int64) if listed else np.zeros(0, np.int64)
    instances = np.array([count for _, _, count in vocabulary], dtype=np.int64)
    if int(instances.sum()) != keys.size:
        raise ValueError("fts5vocab's row and instance tables disagree; cannot export postings")
    term_of = np.repeat(np.arange(len(vocabulary), dtype=np.int64), instances)
    if keys.size > 1 and not bool(np.all((term_of[1:] > term_of[:-1]) | (keys[1:] >= keys[:-1]))):
        order = np.lexsort((keys, term_of))  # not in the documented order: sort it
        keys, term_of = keys[order], term_of[order]
    # Runs of one (term, chunk, column): a count each; runs of one (term, chunk): a posting.
    run = np.flatnonzero(np.r_[True, (term_of[1:] != term_of[:-1]) | (keys[1:] != keys[:-1])])
    run_count = np.diff(np.r_[run, keys.size])
    run_term, run_doc, run_column = term_of[run], keys[run] >> 2, keys[run] & 3
    first = np.r_[True, (run_term[1:] != run_term[:-1]) | (run_doc[1:] != run_doc[:-1])]
    posting_of_run = np.cumsum(first) - 1
    counts = np.zeros((int(first.sum()), len(COLUMNS)), dtype=np.uint16)
    counts[posting_of_run, run_column] = np.minimum(run_count, MAX_COUNT)
    by_id = np.argsort(chunk_ids)
    rows = by_id[np.searchsorted(chunk_ids[by_id], run_doc[first])].astype(np.int32)
    posting_term = run_term[first]
    order = np.lexsort((rows, posting_term))  # each term's postings by row
    rows, counts, posting_term = rows[order], counts[order], posting_term[order]
    starts = np.searchsorted(posting_term, np.arange(len(vocabulary) + 1)).astype(np.int64)
    if not np.array_equal(np.diff(starts), [chunks for _, chunks, _ in vocabulary]):
        raise ValueError("fts5vocab's instances are not in term order; cannot export postings")
    lengths = np.bincount(rows, weights=counts.sum(axis=1), minlength=chunk_ids.size)
    terms = [term.encode("utf-8") for term, _, _ in vocabulary]
    offsets = np.cumsum([0] + [len(t) for t in terms], dtype=np.int64)
    blob = np.frombuffer(b"".join(terms), dtype=np.uint8)
    return Postings.partition(chunk_ids, lengths.astype(np.int64), blob, offsets, starts, rows,
                              counts, group_rows(db, chunk_ids.size))


class Analyzer:
    """Query terms -> the tokens the index holds: folded as the index was (folding.py; only for
    a generation written folded), then by the index's own FTS5 tokenizer (porter stems)
    run on an in-memory table, one per thread.

    Each term is tokenized on its own (a row of its own), so each term's tokens are kept, a
    bounded number of them: a new query whose words were all seen before asks SQLite nothing."""

    KEPT = 65536  # terms whose tokens are remembered; forgotten all at once past this

    def __init__(self, tokenize: str, folded: bool = False) -> None:
        self.tokenize = tokenize
        self.folded = folded
        self._local = threading.local()
        self._known: dict[str, tuple[str, ...]] = {}

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
            quoted = self.tokenize.replace("'", "''")
            db.execute(f"CREATE VIRTUAL TABLE q USING fts5(t, tokenize='{quoted}')")
            db.execute("CREATE VIRTUAL TABLE temp.qv USING fts5vocab(main, q, instance)")
            self._local.db = db
        return db

    def occurrences(self, texts: Sequence[str], tokens: Sequence[str]) -> list[dict[str, int]]:
        """How often each of `tokens` (as the index holds them) occurs in each text, analysed
        as the index analyses text: for the passages a result cites (search_api/retrieval/
        citing.py). One SQLite call for all; only the wanted tokens come back."""
        counts: list[dict[str, int]] = [{} for _ in texts]
        wanted = sorted(set(tokens))
        if not texts or not wanted:
            return counts
        rows = [fold(t) if self.folded else t for t in texts]
        db = self._db()
        try:
            db.executemany("INSERT INTO q(rowid, t) VALUES (?, ?)",
                           ((i, t) for i, t in enumerate(rows) if _encodable(t)))
            found = db.execute("SELECT doc, term, count(*) FROM qv WHERE term IN "
                               f"({','.join('?' * len(wanted))}) GROUP BY doc, term",
                               wanted).fetchall()
        finally:
            db.rollback()  # the table stays empty
        for row, token, count in found:
            counts[row][token] = count
        return counts

    def _tokens_of(self, terms: list[str]) -> list[tuple[str, ...]]:
        """Each term's tokens, in order (a term of several tokens gives each of them)."""
        db = self._db()
        if self.folded:
            terms = [fold(term) for term in terms]
        try:
            db.executemany("INSERT INTO q(rowid, t) VALUES (?, ?)", enumerate(terms))
            found = db.execute("SELECT doc, term FROM qv ORDER BY doc, offset").fetchall()
        finally:
            db.rollback()  # the table stays empty
        tokens: list[list[str]] = [[] for _ in terms]
        for row, token in found:
            tokens[row].append(token)
        return [tuple(each) for each in tokens]

    def __call__(self, terms: Sequence[str]) -> tuple[str, ...]:
        """Terms that are not text (a lone surrogate has no UTF-8 form) match nothing."""
        texts = [t for t in terms if _encodable(t)]
        tokens = {term: self._known.get(term) for term in texts}  # another thread may clear
        missing = [term for term, found in tokens.items() if found is None]
        if missing:
            fresh = dict(zip(missing, self._tokens_of(missing), strict=True))
            if len(self._known) + len(fresh) > self.KEPT:
                self._known.clear()
            self._known.update(fresh)
            tokens.update(fresh)
        return tuple(token for term in texts for token in tokens[term] or ())


def _encodable(term: str) -> bool:
    try:
        term.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
