"""The audit: one append-only record per access (who, on whose behalf, what, which documents).

What every audit shares: the record (`access_event`, written through `Recorder.record`, the one
call every surface makes before it answers), the protocol of an audit (`Audit`), its filters
(`AuditQuery`) and its times. Two audits keep it: files beside the index (files.py) and
PostgreSQL (search_api/state/postgres/audit.py), chosen once by the settings
(search_api/state/shared.py).

No answer without its record: a write that fails raises `AuditUnavailable`, which the API
answers with 503 (errors.py) and MCP with a tool error, before anything is sent; it is also
logged and counted (the `pks_audit_write_failures_total` metric).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from indexer.store.reader import Generation
from search_api.audit.retention import Pruned
from search_api.audit.tally import Summary
from search_api.identity.keys import KeyRecord
from search_api.identity.principal import Principal

ACTIONS = frozenset({"rollback"})  # what an admin changed: recorded, never counted as an access


class KeyList(Protocol):
    """Where the audit finds a key's label (the key store)."""

    def list(self) -> list[KeyRecord]: ...


class AuditUnavailable(Exception):
    """The access could not be recorded, so it must not be answered (503)."""


class Audit(Protocol):
    """The audit as every surface and reader uses it: the file log (files.py), or PostgreSQL's
    (search_api/state/postgres/audit.py), chosen once by the settings
    (search_api/state/shared.py)."""

    def record(self, principal: Principal, surface: str, *, generation: Generation | None,
               query: str | None, doc_ids: Sequence[str], mode: str | None = None,
               on_behalf_of: str | None = None, status: int = 200,
               approximate: bool | None = None,
               pages: Sequence[int | None] | None = None) -> None: ...

    def events(self) -> Iterator[dict[str, Any]]: ...

    def newest_first(self, query: AuditQuery) -> list[dict[str, Any]]: ...

    # the owners' receipts (audit/owned.py): tallies kept as records are written
    def summaries(self, owners: Collection[str], doc_ids: Collection[str],
                  first_day: str | None, last_day: str | None) -> list[Summary]: ...

    def between(self, since: datetime, until: datetime) -> list[dict[str, Any]]: ...

    def recorded_owners(self) -> frozenset[str]: ...

    def prune(self, before: date, export: Path) -> Pruned: ...

    def prepare(self) -> None:
        """Count the receipts of records written before they were kept (once, at start)."""
        ...

    def close(self) -> None: ...



class KeyNames:
    """Key id -> label, looked up in the key store once per key (names never change)."""

    def __init__(self, keys: KeyList) -> None:
        self._keys = keys
        self._names: dict[str, str] = {}

    def __call__(self, key_id: str) -> str:
        """The key's label; for a user signed in through the SSO proxy, the user name."""
        if key_id.startswith("user:"):
            return key_id.removeprefix("user:")
        if key_id not in self._names:
            self._names.update({r.key_id: r.name for r in self._keys.list()})
        return self._names.get(key_id, "")


class Recorder:
    """What every audit does with an access: count it for the metrics, build its record
    (access_event) and write it. Each audit says how it writes (`_write`) and what a record
    that could not be written means (`_lost`)."""

    def __init__(self, keys: KeyList, observer: AccessObserver | None) -> None:
        self.observer = observer
        self._names = KeyNames(keys)

    def record(self, principal: Principal, surface: str, *, generation: Generation | None,
               query: str | None, doc_ids: Sequence[str], mode: str | None = None,
               on_behalf_of: str | None = None, status: int = 200,
               approximate: bool | None = None,
               pages: Sequence[int | None] | None = None) -> None:
        """Record one access: the one call every surface makes, before it answers. Raises
        AuditUnavailable when the record cannot be written (`_lost` says why, and raises).
        `approximate`: whether the dense search ran on the IVF index (None: no dense search
        was made); recorded as `dense_plan`, never shown to the caller. `pages`: the page each
        passage cited, beside `doc_ids` (the caller got the same)."""
        plan = None if approximate is None else "approximate" if approximate else "exact"
        try:
            event = access_event(self._names, principal, surface, generation, query, doc_ids,
                                 mode, on_behalf_of, status, pages)
            event["dense_plan"] = plan
            self._write(event)
        except Exception as exc:
            if self.observer is not None:
                self.observer.audit_write_failed()
            self._lost(principal, surface, exc)
            raise AuditUnavailable(f"audit record lost: {exc}") from exc  # _lost must raise
        if self.observer is not None and surface not in ACTIONS:  # counted once recorded
            self.observer.access(surface, mode, plan)

    def _write(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def _lost(self, principal: Principal, surface: str, error: Exception) -> None:
        """Log a record that could not be written and raise AuditUnavailable."""
        raise NotImplementedError


def access_event(names: KeyNames, principal: Principal, surface: str,
                 generation: Generation | None, query: str | None, doc_ids: Sequence[str],
                 mode: str | None, on_behalf_of: str | None, status: int,
                 pages: Sequence[int | None] | None = None) -> dict[str, Any]:
    """One access as the audit records it; `time` is stamped when it is written. Each document
    is listed once, in rank order, with its passage count and, where given, the page each of
    its passages cited."""
    passages: dict[str, int] = {}
    cited: dict[str, list[int | None]] = {}
    for at, doc_id in enumerate(doc_ids):
        passages[doc_id] = passages.get(doc_id, 0) + 1
        if pages is not None:
            cited.setdefault(doc_id, []).append(pages[at])
    owners = generation.document_owners(list(passages)) if generation is not None else {}
    return {
        "time": None, "key_id": principal.key_id, "key_name": names(principal.key_id),
        "partner": principal.partner, "admin": principal.admin, "on_behalf_of": on_behalf_of,
        "surface": surface, "query": query, "mode": mode, "status": status,
        "generation": generation.name if generation is not None else None,
        "documents": [{"doc_id": d, "owner": owners.get(d), "passages": n,
                       **({"pages": cited[d]} if d in cited else {})}
                      for d, n in passages.items()],
    }


class AccessObserver(Protocol):
    """What the metrics want to know of each access (bounded labels only)."""

    def access(self, surface: str, mode: str | None, plan: str | None = None) -> None: ...

    def audit_write_failed(self) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC. ValueError names the bad text."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO date or date-time, e.g. 2026-11-25T12:00:00Z") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the admin's reading; None means 'any'."""

    partner: str | None = None   # the key's partner or the partner acted for; "admin" for admins
    document: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        if self.partner is not None:
            who = {event.get("on_behalf_of"), "admin" if event.get("admin") else event["partner"]}
            if self.partner not in who:
                return False
        if self.document is not None and not any(
                d["doc_id"] == self.document for d in event.get("documents", ())):
            return False
        moment = parse_time(event["time"])
        return not ((self.since and moment < self.since) or (self.until and moment > self.until))


