"""`python -m search_api db import --index DIR`: move a single server's keys and audit (the
files beside its index) into the shared database, in one command that can be run again.

Keys keep their ids and hashes, so every key already handed out keeps working; a key already
in the database keeps its row and takes a revocation the file has. Audit records keep their
times and are each imported once (by the SHA-256 of their line), so a second run, or a run
after the server wrote more, adds only what is new. The files are left in place, untouched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from search_api.audit.files import AuditLog
from search_api.identity.keys import KeyStore
from search_api.state.postgres.audit import PostgresAudit
from search_api.state.postgres.keys import PostgresKeys

BATCH = 1000  # audit lines per round trip


@dataclass(frozen=True)
class Moved:
    keys: int          # keys added to the database
    keys_seen: int     # keys in keys.sqlite
    records: int       # audit records added
    records_seen: int  # audit records in the files


def move_local(index: Path, keys: PostgresKeys, audit: PostgresAudit) -> Moved:
    local = KeyStore(index)
    stored = local.hashed()
    added_keys = sum(keys.insert(record, sha) for record, sha in stored)
    seen = added = 0
    batch: list[tuple[str, bytes]] = []
    for path in AuditLog(index, local).segments():
        with open(path, "rb") as handle:
            for line in handle:
                if not line.strip().startswith(b"{"):
                    continue  # a torn line after a power loss (the file audit skips it too)
                batch.append((hashlib.sha256(line.rstrip(b"\n")).hexdigest(), line))
                seen += 1
                if len(batch) >= BATCH:
                    added += audit.import_lines(batch)
                    batch = []
    if batch:
        added += audit.import_lines(batch)
    return Moved(added_keys, len(stored), added, seen)
