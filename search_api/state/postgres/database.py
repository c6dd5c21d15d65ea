"""The shared database: its connection pool and its versioned schema.

Migrations are numbered SQL steps applied in order, each once, recorded in `pks_schema`. Every
process applies what is missing when it opens the database, under a transaction-scoped advisory
lock (two replicas starting together never apply a step twice), and `python -m search_api db
migrate` does the same by hand. A database newer than this code is refused, not written to.
The list is written here rather than with a migration framework: two statements do not need
Alembic and SQLAlchemy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

LOCK = 0x706B735F736368  # advisory lock id of schema changes ("pks_sch")
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "api keys and the audit", """
CREATE TABLE pks_api_keys (
    key_id      text PRIMARY KEY,
    name        text NOT NULL,
    partner     text,
    admin       boolean NOT NULL,
    key_sha256  text NOT NULL,
    created_at  text NOT NULL,
    revoked_at  text,
    scopes      text NOT NULL,
    seq         bigserial NOT NULL,
    CHECK ((admin AND partner IS NULL) OR (NOT admin AND partner IS NOT NULL))
);
CREATE TABLE pks_audit (
    id       bigserial PRIMARY KEY,
    time     timestamptz NOT NULL DEFAULT clock_timestamp(),
    who      text[] NOT NULL,
    doc_ids  text[] NOT NULL,
    status   integer NOT NULL,
    event    text NOT NULL,
    origin   text UNIQUE
);
CREATE INDEX pks_audit_time ON pks_audit (time);
CREATE INDEX pks_audit_who ON pks_audit USING gin (who);
CREATE INDEX pks_audit_docs ON pks_audit USING gin (doc_ids);
COMMENT ON COLUMN pks_audit.time IS 'stamped by the database clock: one clock for all replicas';
COMMENT ON COLUMN pks_audit.who IS 'the key''s partner (or admin) and the partner acted for';
COMMENT ON COLUMN pks_audit.event IS 'the record as JSON (ASCII-escaped), without its time';
COMMENT ON COLUMN pks_audit.origin IS 'records moved from a file audit: SHA-256 of the line';
"""),
    (2, "the owners' receipts, kept as the audit is written", """
CREATE TABLE pks_receipts (
    owner      text NOT NULL,
    doc_id     text NOT NULL,
    recipient  text NOT NULL,
    kind       text NOT NULL,
    day        date NOT NULL,
    count      bigint NOT NULL,
    first      timestamptz NOT NULL,
    last       timestamptz NOT NULL,
    PRIMARY KEY (owner, doc_id, recipient, kind, day)
);
CREATE INDEX pks_receipts_doc ON pks_receipts (doc_id, day);
COMMENT ON TABLE pks_receipts IS 'per owner, document, recipient, kind, UTC day (owned.py)';
COMMENT ON COLUMN pks_receipts.doc_id IS 'the document id as a JSON string: any text fits';
CREATE TABLE pks_receipts_backlog (
    one   integer PRIMARY KEY CHECK (one = 1),
    upto  bigint NOT NULL,
    done  bigint NOT NULL
);
INSERT INTO pks_receipts_backlog SELECT 1, coalesce(max(id), 0), 0 FROM pks_audit;
COMMENT ON TABLE pks_receipts_backlog IS 'rows before pks_receipts (id <= upto), counted to done';
"""),
)
LATEST = MIGRATIONS[-1][0]


class DatabaseError(Exception):
    """The database cannot be reached or used; the message says where (never a password)."""


def where(url: str) -> str:
    """host:port/dbname of a URL, for messages: what an operator checks, without secrets."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "(an unreadable PKS_DATABASE_URL)"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or ''}"


class Database:
    """A pool of connections (autocommit: every statement is its own transaction)."""

    def __init__(self, url: str, pool_size: int, timeout: float = 5.0) -> None:
        self.where = where(url)
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False,
                                    timeout=timeout, kwargs={"autocommit": True},
                                    name="pks")
        self._timeout = timeout

    def open(self) -> Database:
        """Connect (waiting at most the timeout) and bring the schema up to date."""
        try:
            self._pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise DatabaseError(f"cannot connect to PostgreSQL at {self.where} "
                                f"(PKS_DATABASE_URL) within {self._timeout:g} s; is it running "
                                "and does the URL name the right user and database?") from exc
        try:
            self.migrate()
        except psycopg.Error as exc:
            self._pool.close()
            raise DatabaseError(f"cannot bring the schema of {self.where} up to date: "
                                f"{exc}") from exc
        except Exception:
            self._pool.close()
            raise
        return self

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; DatabaseError when none can be had in time."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(f"no connection to PostgreSQL at {self.where}: {exc}") from exc

    def version(self) -> int:
        with self.connection() as conn:
            exists = conn.execute("SELECT to_regclass('pks_schema')").fetchone()
            if exists is None or exists[0] is None:
                return 0
            row = conn.execute("SELECT max(version) FROM pks_schema").fetchone()
        return int(row[0] or 0) if row else 0

    def migrate(self) -> tuple[int, int]:
        """Apply the missing steps in one transaction; returns (version before, after)."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS pks_schema (version integer PRIMARY KEY, "
                         "description text NOT NULL, applied_at timestamptz NOT NULL "
                         "DEFAULT now())")
            row = conn.execute("SELECT coalesce(max(version), 0) FROM pks_schema").fetchone()
            before = int(row[0]) if row else 0
            if before > LATEST:
                raise DatabaseError(
                    f"the database at {self.where} has schema version {before}, newer than "
                    f"this code's {LATEST}: upgrade this replica before serving from it")
            for version, description, statements in MIGRATIONS:
                if version > before:
                    conn.execute(statements.encode())  # several statements: no parameters
                    conn.execute("INSERT INTO pks_schema (version, description) VALUES (%s, %s)",
                                 (version, description))
                    log.info("database %s: schema version %d (%s)", self.where, version,
                             description)
        return before, max(before, LATEST)

    def close(self) -> None:
        self._pool.close()
