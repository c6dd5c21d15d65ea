"""The allowed set: which chunk ids one principal may see today.

This is the only place rights are evaluated. Every search takes an AllowedSet as a required
argument, and there is no value meaning "everything": an admin's set is built explicitly from all
chunk ids. Grants are checked against today's date on every request, so an expired agreement
stops at once, without a re-index. The rules are written down in docs/ACCESS.md.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from indexer.store.names import path_matcher
from indexer.store.reader import Generation
from indexer.store.work import tally
from search_api.identity.principal import ACT_AS, Principal

NO_CHUNK = -1  # no chunk has this id (they are non-negative hashes)
Group = int | None  # an access group: the rule its documents fell under (None: no rule)


@dataclass(frozen=True, eq=False)
class AllowedSet:
    """Sorted, unique, read-only chunk ids one principal may see right now, and the access
    groups they lie in: every request step that looks something up looks only in those."""

    ids: np.ndarray
    groups: frozenset[Group] = frozenset()

    def __len__(self) -> int:
        return int(self.ids.size)

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, (int, np.integer)):
            return False
        pos = int(np.searchsorted(self.ids, chunk_id))
        return pos < self.ids.size and int(self.ids[pos]) == chunk_id

    def shows(self, first_chunk_id: int | None) -> bool:
        """Whether the document whose first chunk this is (None: no such document) is visible:
        rights, folder filters and act-as all apply per document, so its first chunk tells.
        A missing document costs the same membership test as a hidden one."""
        return (NO_CHUNK if first_chunk_id is None else first_chunk_id) in self


def _frozen(ids: np.ndarray, groups: frozenset[Group]) -> AllowedSet:
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    ids.setflags(write=False)
    return AllowedSet(ids, groups if ids.size else frozenset())


EMPTY = _frozen(np.zeros(0, dtype=np.int64), frozenset())
WITHIN_KEPT = 4096  # (group, globs) matches remembered; forgotten all at once past this


class AccessIndex:
    """Grants of one generation by partner and access group, so an allowed set costs one union
    per day and knows its groups."""

    def __init__(self, generation: Generation) -> None:
        self._all = _frozen(generation.all_chunk_ids(), frozenset(generation.rules()))
        self._grants: dict[str, list[tuple[date | None, Group, np.ndarray]]] = {}
        for rows in generation.grant_groups():
            self._grants.setdefault(rows.partner, []).append(
                (rows.until, rows.rule, rows.chunk_ids))
        self._cache: dict[tuple[str, date], AllowedSet] = {}
        self._lock = threading.Lock()
        self._generation = generation
        self._by_path: dict[Group, list[tuple[str, np.ndarray]]] | None = None
        self._within_cache: dict[tuple[Group, tuple[str, ...]], np.ndarray] = {}

    def within(self, allowed: AllowedSet, patterns: Sequence[str]) -> AllowedSet:
        """Narrow `allowed` to documents whose path matches one of the globs (access.yaml's
        glob semantics). The result is a subset of `allowed`: a glob can never widen it. Only
        the paths of the groups `allowed` covers are matched: a folder that exists only in
        documents the caller may not see costs what a folder that exists nowhere costs."""
        if len(allowed) == 0:
            return EMPTY
        picked = [self._matching(group, tuple(patterns)) for group in
                  sorted(allowed.groups, key=lambda g: (g is None, g or 0))]
        matching = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        narrowed = np.intersect1d(allowed.ids, matching, assume_unique=True)
        narrowed.setflags(write=False)
        return AllowedSet(narrowed, allowed.groups if narrowed.size else frozenset())

    def _matching(self, group: Group, patterns: tuple[str, ...]) -> np.ndarray:
        """Sorted chunk ids of the group's documents whose path matches; kept per group and
        set of globs, since people repeat the same few folder filters."""
        key = (group, patterns)
        cached = self._within_cache.get(key)
        if cached is None:
            matcher = path_matcher(patterns)
            paths = self._paths().get(group, [])
            tally(paths=len(paths))
            picked = [ids for path, ids in paths if matcher.match(path)]
            cached = np.unique(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
            with self._lock:
                if len(self._within_cache) > WITHIN_KEPT:
                    self._within_cache.clear()
                self._within_cache[key] = cached
        return cached

    def _paths(self) -> dict[Group, list[tuple[str, np.ndarray]]]:
        """Chunk ids per document path and group, read on the first `within` of this
        generation."""
        if self._by_path is None:
            with self._lock:
                if self._by_path is None:
                    self._by_path = self._generation.chunk_paths()
        return self._by_path

    def first_chunk(self, allowed: AllowedSet, doc_id: str) -> int | None:
        """The document's first chunk id, looked up only in the groups `allowed` covers (None
        when it is in none of them): a document of a hidden group and a missing one take the
        same probes. With every group (an admin), one probe of the whole index."""
        if None in allowed.groups:  # no rule: only an admin's set covers that group
            return self._generation.first_chunk_id(doc_id)
        return self._generation.first_chunk_in(
            doc_id, sorted(g for g in allowed.groups if g is not None))

    def visible_to(self, principal: Principal, doc_ids: Sequence[str],
                   today: date) -> dict[str, list[str]] | None:
        """Admins only: which partners may see each document today. None for anyone else, so a
        partner never learns another partner's rights."""
        if not principal.admin:
            return None
        grants = self._generation.grants_of(list(dict.fromkeys(doc_ids)))
        return {doc_id: [partner for partner, until in grants.get(doc_id, [])
                         if until is None or until >= today] for doc_id in doc_ids}

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
        return _frozen(np.intersect1d(mine.ids, theirs.ids, assume_unique=True),
                       mine.groups & theirs.groups)

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
            live = [(group, ids) for until, group, ids in self._grants.get(partner, [])
                    if until is None or until >= today]
            cached = _frozen(np.concatenate([ids for _, ids in live]),
                             frozenset(group for group, _ in live)) if live else EMPTY
            with self._lock:
                if len(self._cache) > 4096:  # dates roll over; never grow without bound
                    self._cache.clear()
                self._cache[key] = cached
        return cached
