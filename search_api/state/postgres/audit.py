"""The audit in PostgreSQL: the accesses of every replica in one table, read by the admin
audit, the owner audit and `python -m search_api audit` exactly as the file audit is.

Each record is written before the request is answered; if it cannot be, `record` raises
AuditUnavailable and the request fails with 503 rather than being answered unrecorded. Times
come from the database's clock, so the records of all replicas sort on one clock. The owners'
receipts (pks_receipts, one row per owner, document, recipient, kind and UTC day) are counted in
the same transaction as the record, by the tallies the file audit counts (audit/tally.py);
records written before that table existed are counted once, by the first server to start
(`fill_backlog`).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from indexer.store.layout import fsync_dir
from search_api.audit.retention import Pruned
from search_api.audit.tally import Summary, Tally, day_counts, tallies_of
from search_api.audit.trail import (
    AccessObserver,
    AuditQuery,
    AuditUnavailable,
    KeyList,
    Recorder,
    iso,
)
from search_api.identity.principal import Principal
from search_api.state.postgres.database import Database

log = logging.getLogger(__name__)
PAGE = 2000  # records per read when all are wanted (the owner audit)
BATCH = 500  # documents per IN (...) list
BACKLOG_LOCK = 0x706B735F726374  # advisory lock of the receipts' backlog ("pks_rct")
UPSERT = ("INSERT INTO pks_receipts VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
          "ON CONFLICT (owner, doc_id, recipient, kind, day) DO UPDATE SET "
          "count = pks_receipts.count + EXCLUDED.count, "
          "first = LEAST(pks_receipts.first, EXCLUDED.first), "
          "last = GREATEST(pks_receipts.last, EXCLUDED.last)")


def text(value: str) -> str:
    """Text PostgreSQL accepts: a lone surrogate (an undecodable file name) written as \\udcxx,
    the same way in records and in filters."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def who(event: dict[str, Any]) -> list[str]:
    """What AuditQuery.partner matches: the key's partner or "admin", and the partner acted
    for."""
    names = ["admin" if event.get("admin") else str(event.get("partner"))]
    if event.get("on_behalf_of"):
        names.append(str(event["on_behalf_of"]))
    return [text(n) for n in names]


def row_values(event: dict[str, Any]) -> tuple[list[str], list[str], int, str]:
    """(who, doc_ids, status, event text) of a record, its time left out."""
    body = {k: v for k, v in event.items() if k != "time"}
    return (who(event), [text(d["doc_id"]) for d in event.get("documents", ())],
            int(event.get("status", 0)), json.dumps(body, ensure_ascii=True))


def _event(moment: datetime, body: str) -> dict[str, Any]:
    return {"time": iso(moment), **json.loads(body)}


def doc_key(doc_id: str) -> str:
    """A document id as pks_receipts stores it: its JSON string, so that any text (a lone
    surrogate of an undecodable file name included) comes back exactly."""
    return json.dumps(doc_id, ensure_ascii=True)


def _rows(tallies: list[Tally]) -> list[tuple[object, ...]]:
    """Upsert parameters, in key order (concurrent writers lock rows in one order)."""
    return sorted((t.owner, doc_key(t.doc_id), t.recipient, t.kind, t.day, t.count, t.first,
                   t.last) for t in tallies)


class PostgresAudit(Recorder):
    """search_api.audit.trail.Audit over the shared database."""

    def __init__(self, db: Database, keys: KeyList,
                 observer: AccessObserver | None = None) -> None:
        super().__init__(keys, observer)
        self.db = db

    def _write(self, event: dict[str, Any]) -> None:
        with self.db.connection() as conn, conn.transaction():
            row = conn.execute("INSERT INTO pks_audit (who, doc_ids, status, event) "
                               "VALUES (%s, %s, %s, %s) RETURNING time",
                               row_values(event)).fetchone()
            assert row is not None
            tallies = tallies_of({**event, "time": iso(row[0])})
            if tallies:
                conn.cursor().executemany(UPSERT, _rows(tallies))

    def _lost(self, principal: Principal, surface: str, error: Exception) -> None:
        """Never a silent loss: the request fails (503) rather than go unrecorded."""
        log.error("audit record not written (%s by key %s): %s", surface, principal.key_id,
                  error)
        raise AuditUnavailable("the audit cannot be written, so the request is not answered; "
                               "try again shortly (operators: see the server log)") from error

    def import_lines(self, lines: Sequence[tuple[str, bytes]]) -> int:
        """Records moved from a file audit, each once: (origin, JSON line), with their
        receipts. Returns how many were new."""
        added = 0
        events = {origin: json.loads(line) for origin, line in lines}
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            rows = [(event["time"], *row_values(event), origin)
                    for origin, event in events.items()]
            cur.executemany("INSERT INTO pks_audit (time, who, doc_ids, status, event, origin) "
                            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (origin) DO NOTHING "
                            "RETURNING origin", rows, returning=True)
            new: list[str] = []
            while True:
                new += [row[0] for row in cur.fetchall()]
                if not cur.nextset():
                    break
            added = len(new)
            tallies = [t for origin in new for t in tallies_of(events[origin])]
            if tallies:
                cur.executemany(UPSERT, _rows(tallies))
        return added

    def events(self) -> Iterator[dict[str, Any]]:
        """All records in the order they were written, read a page at a time."""
        after = 0
        while True:
            with self.db.connection() as conn:
                rows = conn.execute("SELECT id, time, event FROM pks_audit WHERE id > %s "
                                    "ORDER BY id LIMIT %s", (after, PAGE)).fetchall()
            for _, moment, body in rows:
                yield _event(moment, body)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def newest_first(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Records matching `query`, newest first, filtered in the database."""
        where: list[str] = ["true"]
        params: list[object] = []
        if query.partner is not None:
            where.append("who @> ARRAY[%s]::text[]")
            params.append(text(query.partner))
        if query.document is not None:
            where.append("doc_ids @> ARRAY[%s]::text[]")
            params.append(text(query.document))
        if query.since is not None:
            where.append("time >= %s")
            params.append(query.since)
        if query.until is not None:
            where.append("time <= %s")
            params.append(query.until)
        limit = "" if query.limit is None else f" LIMIT {int(query.limit)}"
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT time, event FROM pks_audit WHERE {' AND '.join(where)} "
                f"ORDER BY time DESC, id DESC{limit}".encode(), params).fetchall()
        return [_event(moment, body) for moment, body in rows]

    def prepare(self) -> None:
        counted = self.fill_backlog()
        if counted:
            log.info("receipts counted for %d audit records written before they were kept",
                     counted)

    def fill_backlog(self) -> int:
        """Count the receipts of records written before pks_receipts existed, a page per
        transaction (a restart resumes), by one replica at a time; how many were counted."""
        counted = 0
        with self.db.connection() as conn:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (BACKLOG_LOCK,)).fetchone()
            if not locked or not locked[0]:
                return 0  # another replica is at it
            try:
                while True:
                    with conn.transaction():
                        upto, done = conn.execute(
                            "SELECT upto, done FROM pks_receipts_backlog FOR UPDATE").fetchone() \
                            or (0, 0)
                        if done >= upto:
                            return counted
                        rows = conn.execute(
                            "SELECT id, time, event FROM pks_audit WHERE id > %s AND id <= %s "
                            "ORDER BY id LIMIT %s", (done, upto, PAGE)).fetchall()
                        tallies = [t for _, moment, body in rows
                                   for t in tallies_of(_event(moment, body))]
                        if tallies:
                            conn.cursor().executemany(UPSERT, _rows(tallies))
                        last = rows[-1][0] if rows else upto
                        conn.execute("UPDATE pks_receipts_backlog SET done = %s", (last,))
                        counted += len(rows)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (BACKLOG_LOCK,))

    def summaries(self, owners: Collection[str], doc_ids: Collection[str],
                  first_day: str | None, last_day: str | None) -> list[Summary]:
        """Rows recorded with one of `owners`, or of one of `doc_ids`, within the days, summed
        per (owner, document, recipient, kind) by the database."""
        days, bounds = "", []
        if first_day is not None:
            days, bounds = " AND day >= %s", [date.fromisoformat(first_day)]
        if last_day is not None:
            days, bounds = days + " AND day <= %s", [*bounds, date.fromisoformat(last_day)]
        found: dict[tuple[str, str, str, str], Summary] = {}
        keys = [doc_key(d) for d in sorted(doc_ids)]
        mine = sorted(owners)
        with self.db.connection() as conn:
            for column, values, rest in (("owner", mine, ""),
                                         ("doc_id", keys, " AND NOT owner = ANY(%s)")):
                for start in range(0, len(values), BATCH):
                    rows = conn.execute(
                        "SELECT owner, doc_id, recipient, kind, sum(count), min(first), "
                        "max(last), string_agg(day::text || ' ' || count, ',') FROM "
                        f"pks_receipts WHERE {column} = ANY(%s){rest}{days} "
                        "GROUP BY owner, doc_id, recipient, kind",
                        [values[start:start + BATCH], *([mine] if rest else []),
                         *bounds]).fetchall()
                    for owner, doc, recipient, kind, count, first, last, per_day in rows:
                        summary = Summary(owner, json.loads(doc), recipient, kind, int(count),
                                          iso(first), iso(last), day_counts(per_day))
                        found[summary.key] = summary
        return list(found.values())

    def between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The records of [since, until], oldest first (the time index)."""
        return self.newest_first(AuditQuery(since=since, until=until))[::-1]

    def recorded_owners(self) -> frozenset[str]:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT DISTINCT owner FROM pks_receipts WHERE owner != ''")
            return frozenset(r[0] for r in rows)

    def prune(self, before: date, export: Path) -> Pruned:
        """Export the records before the UTC day `before` to one gzipped file of JSON lines,
        synced, then delete them and their receipts (audit/retention.py)."""
        cutoff = datetime.combine(before, time(), UTC)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = export / f"audit-before-{before.isoformat()}-{stamp}.jsonl.gz"
        export.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        records, newest = 0, 0
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (BACKLOG_LOCK,))
            with gzip.open(partial, "wt", encoding="utf-8") as out, \
                    conn.cursor(name="pks_prune") as cursor:
                cursor.execute("SELECT id, time, event FROM pks_audit WHERE time < %s "
                               "ORDER BY id", (cutoff,))
                for number, moment, body in cursor:
                    out.write(json.dumps(_event(moment, body), ensure_ascii=False) + "\n")
                    records, newest = records + 1, max(newest, number)
            if records == 0:
                partial.unlink()
                conn.execute("DELETE FROM pks_receipts WHERE day < %s", (before,))
                return Pruned(before.isoformat(), 0, ())
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, target)
            fsync_dir(export)
            conn.execute("DELETE FROM pks_audit WHERE time < %s AND id <= %s", (cutoff, newest))
            conn.execute("DELETE FROM pks_receipts WHERE day < %s", (before,))
        log.info("%d audit records before %s exported to %s and removed", records, before,
                 target)
        return Pruned(before.isoformat(), records, (str(target),))

    def close(self) -> None:
        """Nothing buffered: every record is in the database when `record` returns."""
