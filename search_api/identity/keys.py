"""API keys: created by the CLI, stored hashed, checked on every request.

Where they are kept is chosen once by the settings (search_api/state/shared.py):
INDEX/keys.sqlite by default (this module), or PostgreSQL when several replicas share them
(search_api/state/postgres/).
The SQLite store lives beside the generations, not inside one, so keys survive every re-index.
A key reads ``pks_<key id>_<secret>``; only the SHA-256 of the whole key is stored (the secret is
256 random bits, so a fast hash is enough) and it is compared in constant time. Both stores mint
and check keys with the functions here, so a key means the same in either.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from search_api.identity.principal import DEFAULT_SCOPES, SCOPES, Principal

KEYS_DB = "keys.sqlite"
PREFIX = "pks"
_DEFAULT_SCOPES_TEXT = " ".join(sorted(DEFAULT_SCOPES))  # stored space-separated
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS api_keys(
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    partner TEXT,
    admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
    key_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    scopes TEXT NOT NULL DEFAULT '{_DEFAULT_SCOPES_TEXT}',
    CHECK ((admin = 1 AND partner IS NULL) OR (admin = 0 AND partner IS NOT NULL))
);
"""
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class KeyStoreError(Exception):
    """A key operation that cannot be done (unknown key id, bad arguments)."""


class KeyStoreUnavailable(Exception):
    """The key store cannot be read (the database is down): requests fail closed with 503."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    partner: str | None
    admin: bool
    created_at: str
    revoked_at: str | None
    scopes: frozenset[str] = DEFAULT_SCOPES


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scopes_of(text: str) -> frozenset[str]:
    """Scopes as stored: space-separated."""
    return frozenset(text.split())


def scopes_text(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a keys.sqlite written before scopes existed up to date, keeping every key.

    Keys made before scopes get the default scopes (search, retrieve, documents), so each keeps
    doing what it did; act-as is never granted by a migration.
    """
    columns = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
    if "scopes" in columns:
        return
    try:
        db.execute("ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT "
                   f"'{_DEFAULT_SCOPES_TEXT}'")
    except sqlite3.OperationalError as exc:  # another process migrated it a moment ago
        if "duplicate column" not in str(exc):
            raise


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NewKey:
    """A key as minted: its record, the plain key (shown once) and the hash that is stored."""

    record: KeyRecord
    token: str
    sha256: str


def mint(name: str, partner: str | None, admin: bool, scopes: frozenset[str]) -> NewKey:
    """A new key after checking its arguments (KeyStoreError says what is wrong)."""
    if admin == (partner is not None):
        raise KeyStoreError("a key is either for one partner (--partner ID) or an admin key")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyStoreError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; "
                            f"scopes are: {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(KeyRecord(key_id, name, partner, admin, now(), None, frozenset(scopes)),
                  token, _sha256(token))


def key_id_of(token: str) -> str:
    """The key id a presented key names ('' when it is not of our form)."""
    parts = token.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else ""


def principal_of(token: str, row: tuple[str, str | None, bool, str | None, str] | None,
                 ) -> Principal | None:
    """Check a presented key against its stored row (sha256, partner, admin, revoked_at,
    scopes), in constant time whether or not the row exists; None unless it matches and is
    not revoked."""
    stored = row[0] if row else _DUMMY_HASH
    matches = hmac.compare_digest(_sha256(token), stored)
    if row is None or not matches or row[3] is not None:
        return None
    return Principal(key_id=key_id_of(token), partner=row[1], admin=bool(row[2]),
                     scopes=scopes_of(row[4]))


class Keys(Protocol):
    """What the service and the CLI need of a key store (SQLite here, or PostgreSQL)."""

    def create(self, name: str, partner: str | None, admin: bool,
               scopes: frozenset[str] = DEFAULT_SCOPES) -> tuple[KeyRecord, str]: ...

    def list(self) -> list[KeyRecord]: ...

    def revoke(self, key_id: str) -> KeyRecord: ...

    def authenticate(self, token: str) -> Principal | None: ...


class KeyStore:
    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / KEYS_DB
        self._migrated = False
        self._readers = threading.local()  # each request thread's connection for key checks

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection per operation: a revoke is seen by the next request."""
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        try:
            if new:
                os.chmod(self.path, 0o600)  # hashes only, but still nobody else's business
                db.executescript(SCHEMA)
            with db:
                if not self._migrated:
                    _migrate(db)
                    self._migrated = True
                yield db
        finally:
            db.close()

    def create(self, name: str, partner: str | None, admin: bool,
               scopes: frozenset[str] = DEFAULT_SCOPES) -> tuple[KeyRecord, str]:
        """Make a key; the plain key is returned once and never stored."""
        new = mint(name, partner, admin, scopes)
        record = new.record
        with self._connect() as db:
            db.execute("INSERT INTO api_keys (key_id, name, partner, admin, key_sha256, "
                       "created_at, revoked_at, scopes) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                       (record.key_id, name, partner, int(admin), new.sha256, record.created_at,
                        scopes_text(record.scopes)))
        return record, new.token

    def list(self) -> list[KeyRecord]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT key_id, name, partner, admin, created_at, revoked_at, "
                              "scopes FROM api_keys ORDER BY rowid").fetchall()
        return [KeyRecord(r[0], r[1], r[2], bool(r[3]), r[4], r[5], scopes_of(r[6])) for r in rows]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._connect() as db:
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                       (now(), key_id))
        for record in self.list():
            if record.key_id == key_id:
                return record
        raise KeyStoreError(f"no key with id '{key_id}' (see `keys list`)")

    def authenticate(self, token: str) -> Principal | None:
        """The principal behind a presented key, or None for unknown, malformed or revoked."""
        key_id = key_id_of(token)
        row = None
        db = self._reader() if key_id else None
        if db is not None:
            row = db.execute("SELECT key_sha256, partner, admin, revoked_at, scopes "
                             "FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return principal_of(token, row)

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's connection for key checks, kept between requests: opening one was most
        of a key check's CPU. Each query still reads the file as it is now (SQLite starts every
        read afresh), so a key revoked a moment ago is refused by the next request. Reopened
        when keys.sqlite was replaced or written; None while there is none."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        # A new inode number may repeat a deleted file's; with the time of the last write,
        # a replaced file is told apart (a revocation also reopens: a rare, cheap event).
        file = (status.st_dev, status.st_ino, status.st_mtime_ns)
        held: tuple[tuple[int, int, int], sqlite3.Connection] | None = \
            getattr(self._readers, "held", None)
        if held is not None and held[0] == file:
            return held[1]
        if held is not None:
            held[1].close()
        if not self._migrated:
            with self._connect():  # brings an old file's schema up to date first
                pass
        db = sqlite3.connect(self.path, timeout=10)
        self._readers.held = (file, db)
        return db

    def hashed(self) -> builtins.list[tuple[KeyRecord, str]]:
        """Every key with its stored hash: what `db import` copies into PostgreSQL."""
        if not self.path.exists():
            return []
        with self._connect() as db:
            hashes = dict(db.execute("SELECT key_id, key_sha256 FROM api_keys").fetchall())
        return [(record, hashes[record.key_id]) for record in self.list()]
