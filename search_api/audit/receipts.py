"""The owners' receipts of the file audit, kept as the audit is written: one row per owner,
document, receiving partner, kind and UTC day with its count and first and last time, in
INDEX/audit/receipts.sqlite. An owner's view reads its rows (owned.py), never the whole audit,
so it costs the same at ten thousand and at a million records (benchmarks/owned_receipts.py).

The records stay the truth: the rows are what the records say, and the table remembers how far
into which segment it has read (the segment named by its first record's time, which a rename
keeps). Every writer adds its record's rows under the audit's lock; a writer or reader that
finds records the table has not read (a process killed between the two writes, an audit from
before this table) reads them first. A table that names a segment that no longer exists is
rebuilt from the records. Its writes are not synced: a table lost to a power cut is rebuilt.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from search_api.audit.tally import Summary, Tally, day_counts, tallies_of

RECEIPTS_DB = "receipts.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts(
    owner TEXT NOT NULL, doc_id TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    day TEXT NOT NULL, count INTEGER NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL,
    PRIMARY KEY (owner, doc_id, recipient, kind, day)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_by_doc ON receipts(doc_id, day);
CREATE TABLE IF NOT EXISTS consumed(
    one INTEGER PRIMARY KEY CHECK (one = 1), segment TEXT NOT NULL, offset INTEGER NOT NULL);
"""
UPSERT = ("INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (owner, doc_id, recipient, kind, day) DO UPDATE SET "
          "count = count + excluded.count, first = min(first, excluded.first), "
          "last = max(last, excluded.last)")
BATCH = 500  # bound parameters per IN (...) list

Position = tuple[str, int]  # (segment's first record time, bytes read of it)


def first_time(path: Path) -> str | None:
    """The time of a segment's first record: its name in the table (None while empty)."""
    try:
        with open(path, "rb") as handle:
            return str(json.loads(handle.readline())["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def records(path: Path, start: int, stop: int | None) -> Iterator[dict[str, Any]]:
    """The readable records of bytes [start, stop) of a segment (a torn line is skipped, as
    the audit's own reader skips it)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read() if stop is None else handle.read(max(0, stop - start))
    for line in data.splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue


class ReceiptIndex:
    """The table beside one file audit. Callers hold the audit's lock around `add` and
    `catch_up`; reads need no lock (SQLite's own)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RECEIPTS_DB
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0600 as the audit's own files; SQLite gives its -wal and -shm files the same mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # rebuilt from the records if lost
            db.executescript(SCHEMA)
            self._local.db = db
        return db

    def position(self) -> Position | None:
        row = self._db().execute("SELECT segment, offset FROM consumed").fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def add(self, tallies: Iterable[Tally], to: Position) -> None:
        """Count these rows and move the position to `to`, in one transaction."""
        db = self._db()
        with db:
            db.executemany(UPSERT, [(t.owner, t.doc_id, t.recipient, t.kind, t.day, t.count,
                                     t.first, t.last) for t in tallies])
            db.execute("INSERT INTO consumed VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET "
                       "segment = excluded.segment, offset = excluded.offset", to)

    def catch_up(self, segments: list[Path], stop: int | None = None) -> None:
        """Count every record from the position on: the audit's segments, oldest first, the
        last read up to `stop` bytes (or whole)."""
        named = [(name, p) for p in segments if (name := first_time(p)) is not None]
        at = self.position()
        if at is not None and at[0] not in {name for name, _ in named}:
            self._clear()  # a segment it read is gone (removed by hand): read them all again
            at = None
        start = 0 if at is None else next(i for i, (n, _) in enumerate(named) if n == at[0])
        for number, (name, path) in enumerate(named[start:], start=start):
            offset = at[1] if at is not None and name == at[0] else 0
            last = number == len(named) - 1
            upto = stop if last and stop is not None else path.stat().st_size
            found = [t for event in records(path, offset, upto) for t in tallies_of(event)]
            self.add(found, (name, upto))

    def after_write(self, segments: list[Path], active: str, before: int, after: int,
                    ours: list[Tally]) -> None:
        """A record was just written to bytes [before, after) of the open segment (named
        `active`): count it, and first whatever came before it unread."""
        if self.position() != (active, before):
            self.catch_up(segments, stop=before)
        self.add(ours, (active, after))

    def current(self, segments: list[Path]) -> None:
        """Read whatever records the table has not (usually none: one comparison)."""
        for path in reversed(segments):
            name = first_time(path)
            if name is not None:
                if self.position() != (name, path.stat().st_size):
                    self.catch_up(segments)
                return

    def _clear(self) -> None:
        db = self._db()
        with db:
            db.execute("DELETE FROM receipts")
            db.execute("DELETE FROM consumed")

    def summaries(self, owners: Collection[str], doc_ids: Collection[str],
                  first_day: str | None, last_day: str | None) -> list[Summary]:
        """Rows recorded with one of `owners`, or of one of `doc_ids`, within the days, summed
        per (owner, document, recipient, kind) by SQLite."""
        days, bounds = _days_clause(first_day, last_day)
        found: dict[tuple[str, str, str, str], Summary] = {}
        db = self._db()
        mine = sorted(owners)
        others = f" AND owner NOT IN ({','.join('?' * len(mine))})"  # those came first
        for column, values, rest in (("owner", mine, ""), ("doc_id", sorted(doc_ids), others)):
            for start in range(0, len(values), BATCH):
                batch = values[start:start + BATCH]
                marks = ",".join("?" * len(batch))
                rows = db.execute(
                    "SELECT owner, doc_id, recipient, kind, sum(count), min(first), max(last), "
                    f"group_concat(day || ' ' || count, ',') FROM receipts WHERE {column} IN "
                    f"({marks}){rest}{days} GROUP BY owner, doc_id, recipient, kind",
                    (*batch, *(mine if rest else ()), *bounds))
                for owner, doc_id, recipient, kind, count, first, last, per_day in rows:
                    summary = Summary(owner, doc_id, recipient, kind, int(count), first, last,
                                      day_counts(per_day))
                    found[summary.key] = summary
        return list(found.values())

    def recorded_owners(self) -> frozenset[str]:
        return frozenset(r[0] for r in self._db().execute(
            "SELECT DISTINCT owner FROM receipts WHERE owner != ''"))

    def forget_before(self, day: str) -> int:
        """Drop the rows of days before `day` (their records were pruned); how many."""
        db = self._db()
        with db:
            return db.execute("DELETE FROM receipts WHERE day < ?", (day,)).rowcount

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _days_clause(first_day: str | None, last_day: str | None) -> tuple[str, tuple[str, ...]]:
    clause, bounds = "", tuple[str, ...]()
    if first_day is not None:
        clause, bounds = " AND day >= ?", (first_day,)
    if last_day is not None:
        clause, bounds = clause + " AND day <= ?", (*bounds, last_day)
    return clause, bounds

