"""The state a replica shares with others: API keys and the audit. Chosen here, once, from
the settings: files beside the index by default (INDEX/keys.sqlite, INDEX/audit/), or one
PostgreSQL database for every replica when PKS_DATABASE_URL is set (docs/REPLICAS.md).
Services.open and the CLI (`keys`, `audit`, `db`) open it here; nothing else asks which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from search_api.audit.files import AuditLog
from search_api.audit.trail import AccessObserver, Audit
from search_api.identity.keys import Keys, KeyStore
from search_api.settings import ApiSettings


class StateUnavailable(Exception):
    """The shared database cannot be reached or is of a newer schema (the message says which)."""


@dataclass(frozen=True)
class SharedState:
    keys: Keys
    audit: Audit
    close: Callable[[], None]
    where: str  # for messages: the index directory or the database's host:port/name


def open_state(settings: ApiSettings, observer: AccessObserver | None = None) -> SharedState:
    """Keys and audit as configured. Raises StateUnavailable for an unreachable database."""
    if settings.database_url is None:
        keys = KeyStore(settings.index)
        audit = AuditLog(settings.index, keys, max_bytes=settings.audit_max_bytes,
                         max_age_seconds=settings.audit_max_age_hours * 3600,
                         fsync_seconds=settings.audit_fsync_seconds, observer=observer)
        return SharedState(keys, audit, audit.close, str(settings.index))
    from search_api.state.postgres.audit import PostgresAudit
    from search_api.state.postgres.database import Database, DatabaseError
    from search_api.state.postgres.keys import PostgresKeys

    db = Database(settings.database_url.get_secret_value(), settings.database_pool_size,
                  settings.database_timeout_seconds)
    try:
        db.open()
    except DatabaseError as exc:
        raise StateUnavailable(str(exc)) from exc
    shared = PostgresKeys(db)
    return SharedState(shared, PostgresAudit(db, shared, observer), db.close,
                       f"PostgreSQL at {db.where}")
