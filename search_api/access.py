"""Access: who is asking (the principal) and which chunk ids it may see today (its allowed set).

This is the only place rights are evaluated. Every search takes an AllowedSet as a required
argument, and there is no value meaning "everything": an admin's set is built explicitly from all
chunk ids. Grants are checked against today's date on every request, so an expired agreement
stops at once, without a re-index. The rules are written down in docs/ACCESS.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import numpy as np

from indexer.store import Generation

# What a key may do (docs/ACCESS.md, "Scopes"): one scope per surface, plus act-as.
SEARCH, RETRIEVE, DOCUMENTS, ACT_AS = "search", "retrieve", "documents", "act-as"
SCOPES = (SEARCH, RETRIEVE, DOCUMENTS, ACT_AS)
DEFAULT_SCOPES = frozenset({SEARCH, RETRIEVE, DOCUMENTS})  # act-as is opt-in only


class AccessDenied(Exception):
    """The key may not do this (403). Says which scope is missing, never what exists."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    partner: str | None  # None only for admin keys, never as a wildcard
    admin: bool
    scopes: frozenset[str] = DEFAULT_SCOPES

    def require(self, scope: str) -> None:
        """Refuse a surface (or act-as) the key was not given."""
        if scope not in self.scopes:
            raise AccessDenied(
                f"this key lacks the scope '{scope}' (it has: {', '.join(sorted(self.scopes))}); "
                f"create a key with `keys create ... --scope {scope}`")


@dataclass(frozen=True, eq=False)
class AllowedSet:
    """Sorted, unique, read-only chunk ids one principal may see right now."""

    ids: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, (int, np.integer)):
            return False
        pos = int(np.searchsorted(self.ids, chunk_id))
        return pos < self.ids.size and int(self.ids[pos]) == chunk_id


def _frozen(ids: np.ndarray) -> AllowedSet:
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    ids.setflags(write=False)
    return AllowedSet(ids)


EMPTY = _frozen(np.zeros(0, dtype=np.int64))


class AccessIndex:
    """Grants of one generation, pre-grouped so an allowed set costs one union per day."""

    def __init__(self, generation: Generation) -> None:
        self._all = _frozen(generation.all_chunk_ids())
        self._grants: dict[str, list[tuple[date | None, np.ndarray]]] = {}
        for rows in generation.grant_rows():
            self._grants.setdefault(rows.partner, []).append((rows.until, rows.chunk_ids))
        self._cache: dict[tuple[str, date], AllowedSet] = {}
        self._lock = threading.Lock()

    def allowed_for(self, principal: Principal, today: date,
                    on_behalf_of: str | None = None) -> AllowedSet:
        """What the principal may see today; acting for a partner, only what BOTH may see.

        Acting for someone needs the act-as scope. An unknown partner sees nothing, so the
        intersection is empty: the answer never tells whether that partner exists.
        """
        mine = self._principal_set(principal, today)
        if on_behalf_of is None:
            return mine
        principal.require(ACT_AS)
        theirs = self._partner_set(on_behalf_of, today)
        return _frozen(np.intersect1d(mine.ids, theirs.ids, assume_unique=True))

    def _principal_set(self, principal: Principal, today: date) -> AllowedSet:
        if principal.admin:
            return self._all
        if principal.partner is None:
            return EMPTY  # fail closed: a non-admin principal without a partner sees nothing
        return self._partner_set(principal.partner, today)

    def _partner_set(self, partner: str, today: date) -> AllowedSet:
        key = (partner, today)
        cached = self._cache.get(key)
        if cached is None:
            live = [ids for until, ids in self._grants.get(partner, [])
                    if until is None or until >= today]
            cached = _frozen(np.concatenate(live)) if live else EMPTY
            with self._lock:
                if len(self._cache) > 4096:  # dates roll over; never grow without bound
                    self._cache.clear()
                self._cache[key] = cached
        return cached
