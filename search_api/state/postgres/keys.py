"""API keys in PostgreSQL: the same keys as INDEX/keys.sqlite (minted and checked by
search_api/identity/keys.py), read on every request, so a revocation holds on every
replica at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from search_api.identity.keys import (
    KeyRecord,
    KeyStoreError,
    KeyStoreUnavailable,
    key_id_of,
    mint,
    now,
    principal_of,
    scopes_of,
    scopes_text,
)
from search_api.identity.principal import DEFAULT_SCOPES, Principal
from search_api.state.postgres.database import Database, DatabaseError

COLUMNS = "key_id, name, partner, admin, created_at, revoked_at, scopes"


def _record(row: tuple) -> KeyRecord:  # type: ignore[type-arg]
    return KeyRecord(row[0], row[1], row[2], bool(row[3]), row[4], row[5], scopes_of(row[6]))


class PostgresKeys:
    """The key store of every replica (search_api.identity.keys.Keys)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """Any failure to reach the database is KeyStoreUnavailable: callers fail closed."""
        try:
            with self.db.connection() as conn:
                yield conn
        except (DatabaseError, psycopg.Error) as exc:
            raise KeyStoreUnavailable(f"the key store (PostgreSQL at {self.db.where}) cannot "
                                      f"be reached: {exc}") from exc

    def create(self, name: str, partner: str | None, admin: bool,
               scopes: frozenset[str] = DEFAULT_SCOPES) -> tuple[KeyRecord, str]:
        new = mint(name, partner, admin, scopes)
        self.insert(new.record, new.sha256)
        return new.record, new.token

    def insert(self, record: KeyRecord, sha256: str) -> bool:
        """Store a key as it is (a new one, or one moved from keys.sqlite). A key already
        here is kept, taking a revocation the other copy has; False if it was here."""
        with self._connection() as conn:
            row = conn.execute(
                "INSERT INTO pks_api_keys (key_id, name, partner, admin, key_sha256, created_at, "
                "revoked_at, scopes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (key_id) DO UPDATE SET revoked_at = "
                "coalesce(pks_api_keys.revoked_at, excluded.revoked_at) "
                "WHERE pks_api_keys.key_sha256 = excluded.key_sha256 "
                "RETURNING (xmax = 0)",
                (record.key_id, record.name, record.partner, record.admin, sha256,
                 record.created_at, record.revoked_at, scopes_text(record.scopes))).fetchone()
        return bool(row and row[0])

    def list(self) -> list[KeyRecord]:
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM pks_api_keys ORDER BY seq").fetchall()
        return [_record(r) for r in rows]

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoked when this returns: every replica's next request with the key is refused."""
        with self._connection() as conn:
            conn.execute("UPDATE pks_api_keys SET revoked_at = %s WHERE key_id = %s AND "
                         "revoked_at IS NULL", (now(), key_id))
            row = conn.execute(f"SELECT {COLUMNS} FROM pks_api_keys WHERE key_id = %s",
                               (key_id,)).fetchone()
        if row is None:
            raise KeyStoreError(f"no key with id '{key_id}' (see `keys list`)")
        return _record(row)

    def authenticate(self, token: str) -> Principal | None:
        key_id = key_id_of(token)
        row = None
        if key_id:
            with self._connection() as conn:
                row = conn.execute("SELECT key_sha256, partner, admin, revoked_at, scopes FROM "
                                   "pks_api_keys WHERE key_id = %s", (key_id,)).fetchone()
        return principal_of(token, row)
