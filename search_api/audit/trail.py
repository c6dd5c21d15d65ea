"""The audit: one append-only record per access (who, on whose behalf, what, which documents).

Layout (beside the generations, so it outlives every restart and re-index)::

    INDEX/audit/current.jsonl            the open segment, appended to (mode 0600)
    INDEX/audit/segment-NNNNNN.jsonl     closed segments, renamed from current.jsonl in order
    INDEX/audit/.lock                    flock that serialises writers of all processes

Rotation renames the open segment to the next number and opens a fresh one; nothing is ever
deleted or rewritten, and readers read every segment. Each record is one JSON line written with a
single `write(2)` on an O_APPEND descriptor while holding the lock, so concurrent writers (request
threads, or the MCP process beside the server) never interleave.

Durability: a record is in the kernel when `record` returns, so a crash or kill of the server loses
nothing. fsync (a disk flush, milliseconds on the request path) runs at most every
`audit_fsync_seconds`, so only a power loss can lose the last second of records; set it to 0 to
flush after every record where that second matters more than latency.

No answer without its record: a write that fails raises `AuditUnavailable`, which the API
answers with 503 (errors.py) and MCP with a tool error, before anything is sent; it is also
logged and counted (`failures`, and the `pks_audit_write_failures_total` metric). Texts are
recorded as given, whatever their characters: one that UTF-8 cannot encode (a lone surrogate)
is written as its JSON escape, never dropped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from indexer.store.layout import fsync_dir
from indexer.store.reader import Generation
from search_api.identity.keys import KeyRecord
from search_api.identity.principal import Principal

log = logging.getLogger(__name__)

AUDIT_DIR = "audit"
ACTIVE = "current.jsonl"
SEGMENT = re.compile(r"^segment-(\d{6,})\.jsonl$")
DOWNLOAD_SURFACES = frozenset({"document", "mcp-document"})  # the rest returns passages
ACTIONS = frozenset({"rollback"})  # what an admin changed: recorded, never counted as an access


class KeyList(Protocol):
    """Where the audit finds a key's label (the key store)."""

    def list(self) -> list[KeyRecord]: ...


class AuditUnavailable(Exception):
    """The access could not be recorded, so it must not be answered (503)."""


class Audit(Protocol):
    """The audit as every surface and reader uses it: this file log, or PostgreSQL's
    (search_api/state/postgres/audit.py), chosen once by the settings
    (search_api/state/shared.py)."""

    def record(self, principal: Principal, surface: str, *, generation: Generation | None,
               query: str | None, doc_ids: Sequence[str], mode: str | None = None,
               on_behalf_of: str | None = None, status: int = 200,
               approximate: bool | None = None,
               pages: Sequence[int | None] | None = None) -> None: ...

    def events(self) -> Iterator[dict[str, Any]]: ...

    def newest_first(self, query: AuditQuery) -> list[dict[str, Any]]: ...

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


class AuditLog(Recorder):
    """Writes and reads INDEX/audit. One instance per process; safe across threads."""

    def __init__(self, index_dir: Path, keys: KeyList, *, max_bytes: int = 64 * 1024 * 1024,
                 max_age_seconds: float = 86400.0, fsync_seconds: float = 1.0,
                 observer: AccessObserver | None = None) -> None:
        self.dir = index_dir / AUDIT_DIR
        super().__init__(keys, observer)
        self.max_bytes, self.max_age, self.fsync_every = max_bytes, max_age_seconds, fsync_seconds
        self.failures = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._started = 0.0  # when the open segment got its first record (epoch seconds)
        self._synced = 0.0

    # -- writing ---------------------------------------------------------------------------

    def _lost(self, principal: Principal, surface: str, error: Exception) -> None:
        """A record that could not be written: counted, logged, and the request refused."""
        with self._lock:
            self.failures += 1
        log.error("audit record not written (%s by key %s); the request is refused",
                  surface, principal.key_id, exc_info=error)
        raise AuditUnavailable(
            "the audit log cannot record this request, so it is not answered; "
            "retry later (operators: see the server log)") from error

    def _write(self, event: dict[str, Any]) -> None:
        """Stamp the time under the lock, so the file's order is the order of the times."""
        with self._lock:
            if self._lock_fd is None:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                event["time"] = iso(utc_now())
                # backslashreplace: a lone surrogate becomes its JSON escape (\\ud800), which
                # reads back as the same text; everything else stays readable UTF-8.
                data = (json.dumps(event, ensure_ascii=False) + "\n").encode(
                    "utf-8", "backslashreplace")
                fd = self._open_segment()
                size = os.fstat(fd).st_size
                if size >= self.max_bytes or (size and time.time() - self._started >= self.max_age):
                    self._rotate()
                    fd = self._open_segment()
                    size = 0
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a writer died mid-line: never glue a record onto it
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync_every == 0 or time.monotonic() - self._synced >= self.fsync_every:
                    os.fsync(fd)
                    self._synced = time.monotonic()
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _open_segment(self) -> int:
        """The descriptor of current.jsonl, reopened if another process rotated it away."""
        path = self.dir / ACTIVE
        try:
            same = self._fd is not None and os.stat(path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            self._fd = fd
            self._started = self._first_record_time(path) or time.time()
            fsync_dir(self.dir)
        assert self._fd is not None
        return self._fd

    @staticmethod
    def _first_record_time(path: Path) -> float | None:
        with open(path, "rb") as handle:
            first = handle.readline()
        try:
            return parse_time(json.loads(first)["time"]).timestamp()
        except (ValueError, KeyError, TypeError):
            return None

    def _rotate(self) -> None:
        """Rename the open segment to the next number; a later write opens a fresh one."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        numbers = [int(m.group(1)) for p in self.dir.iterdir() if (m := SEGMENT.match(p.name))]
        target = self.dir / f"segment-{max(numbers, default=0) + 1:06d}.jsonl"
        os.rename(self.dir / ACTIVE, target)
        fsync_dir(self.dir)
        log.info("audit segment closed: %s", target.name)

    def close(self) -> None:
        with self._lock:
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    if fd == self._fd:
                        os.fsync(fd)
                    os.close(fd)
            self._fd = self._lock_fd = None

    # -- reading ---------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Every file of the audit, oldest first."""
        if not self.dir.is_dir():
            return []
        closed = sorted((p for p in self.dir.iterdir() if SEGMENT.match(p.name)),
                        key=lambda p: int(SEGMENT.match(p.name).group(1)))  # type: ignore[union-attr]
        active = self.dir / ACTIVE
        return closed + ([active] if active.exists() else [])

    def _lines(self, path: Path) -> list[dict[str, Any]]:
        events = []
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    events.append(json.loads(line))
                except ValueError:  # a torn last line after a power loss: skip, say where
                    log.warning("unreadable audit line %s:%d skipped", path.name, number)
        return events

    def events(self) -> Iterator[dict[str, Any]]:
        """All records, oldest first."""
        for path in self.segments():
            yield from self._lines(path)

    def newest_first(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Records matching `query`, newest first, at most `query.limit` of them."""
        found: list[dict[str, Any]] = []
        for path in reversed(self.segments()):
            for event in reversed(self._lines(path)):
                if query.matches(event):
                    found.append(event)
                    if query.limit is not None and len(found) >= query.limit:
                        return found
        return found
