"""The audit in PostgreSQL: the accesses of every replica in one table, read by the admin
audit, the owner audit and `python -m search_api audit` exactly as the file audit is.

Each record is written before the request is answered; if it cannot be, `record` raises
AuditUnavailable and the request fails with 503 rather than being answered unrecorded. Times
come from the database's clock, so the records of all replicas sort on one clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

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


class PostgresAudit(Recorder):
    """search_api.audit.trail.Audit over the shared database."""

    def __init__(self, db: Database, keys: KeyList,
                 observer: AccessObserver | None = None) -> None:
        super().__init__(keys, observer)
        self.db = db

    def _write(self, event: dict[str, Any]) -> None:
        with self.db.connection() as conn:
            conn.execute("INSERT INTO pks_audit (who, doc_ids, status, event) "
                         "VALUES (%s, %s, %s, %s)", row_values(event))

    def _lost(self, principal: Principal, surface: str, error: Exception) -> None:
        """Never a silent loss: the request fails (503) rather than go unrecorded."""
        log.error("audit record not written (%s by key %s): %s", surface, principal.key_id,
                  error)
        raise AuditUnavailable(f"the audit (PostgreSQL at {self.db.where}) cannot be "
                               "written, so the request is not answered; try again "
                               "shortly") from error

    def import_lines(self, lines: Sequence[tuple[str, bytes]]) -> int:
        """Records moved from a file audit, each once: (origin, JSON line). Returns how many
        were new."""
        added = 0
        with self.db.connection() as conn, conn.cursor() as cur:
            rows = []
            for origin, line in lines:
                event = json.loads(line)
                rows.append((event["time"], *row_values(event), origin))
            cur.executemany("INSERT INTO pks_audit (time, who, doc_ids, status, event, origin) "
                            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (origin) DO NOTHING "
                            "RETURNING id", rows, returning=True)
            while True:
                added += len(cur.fetchall())
                if not cur.nextset():
                    break
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

    def close(self) -> None:
        """Nothing buffered: every record is in the database when `record` returns."""
