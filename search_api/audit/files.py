"""The audit in files beside the index: one JSON line per access.

Layout (beside the generations, so it outlives every restart and re-index)::

    INDEX/audit/current.jsonl            the open segment, appended to (mode 0600)
    INDEX/audit/segment-NNNNNN.jsonl     closed segments, renamed from current.jsonl in order
    INDEX/audit/receipts.sqlite          the owners' receipts, kept as records are written
    INDEX/audit/.lock                    flock that serialises writers of all processes

Rotation renames the open segment to the next number and opens a fresh one, at the size or age
limit or when a record of a new UTC day arrives (a segment holds one day: retention.py removes
whole days); nothing else is ever deleted or rewritten. Readers read the segments that overlap
the period asked for. Each record is one JSON line written with a single `write(2)` on an
O_APPEND descriptor while holding the lock, so concurrent writers (request threads, or the MCP
process beside the server) never interleave.

Durability: a record is in the kernel when `record` returns, so a crash or kill of the server loses
nothing. fsync (a disk flush, milliseconds on the request path) runs at most every
`audit_fsync_seconds`, so only a power loss can lose the last second of records; set it to 0 to
flush after every record where that second matters more than latency. Texts are recorded as
given, whatever their characters: one that UTF-8 cannot encode (a lone surrogate) is written as
its JSON escape, never dropped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from indexer.store.layout import fsync_dir
from search_api.audit.receipts import ReceiptIndex, first_time
from search_api.audit.retention import Pruned, prune_segments
from search_api.audit.tally import Summary, tallies_of
from search_api.audit.trail import (
    AccessObserver,
    AuditQuery,
    AuditUnavailable,
    KeyList,
    Recorder,
    iso,
    parse_time,
    utc_now,
)
from search_api.identity.principal import Principal

log = logging.getLogger(__name__)

AUDIT_DIR = "audit"
ACTIVE = "current.jsonl"
SEGMENT = re.compile(r"^segment-(\d{6,})\.jsonl$")


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
        self._name: str | None = None  # the open segment's first record's time (receipts.py)
        self._synced = 0.0
        self.receipts = ReceiptIndex(self.dir)

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

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads and every other process that writes the audit, held off: the
        thread lock, then an exclusive flock on INDEX/audit/.lock (made on first use)."""
        with self._lock:
            if self._lock_fd is None:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _write(self, event: dict[str, Any]) -> None:
        """Stamp the time under the lock, so the file's order is the order of the times."""
        with self._locked():
            event["time"] = iso(utc_now())
            # backslashreplace: a lone surrogate becomes its JSON escape (\\ud800), which
            # reads back as the same text; everything else stays readable UTF-8.
            data = (json.dumps(event, ensure_ascii=False) + "\n").encode(
                "utf-8", "backslashreplace")
            fd = self._open_segment()
            size = os.fstat(fd).st_size
            if size and self._name is None:  # another process wrote its first record
                self._name = first_time(self.dir / ACTIVE)
            if size >= self.max_bytes or (size and (
                    time.time() - self._started >= self.max_age
                    or self._name is not None and self._name[:10] != event["time"][:10])):
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
            self._name = self._name if size else event["time"]
            self._count(event, size, size + len(data))

    def _count(self, event: dict[str, Any], before: int, after: int) -> None:
        """The record's receipts (receipts.py). The record is written: a table that cannot be
        updated now catches up with the next write or read, and the request goes on."""
        try:
            assert self._name is not None
            self.receipts.after_write(self.segments(), self._name, before, after,
                                      tallies_of(event))
        except Exception:
            log.exception("the owners' receipts were not updated; they catch up later")

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
            self._name = first_time(path)
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
            self.receipts.close()
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
        """Records matching `query`, newest first, at most `query.limit` of them; only the
        segments that overlap its period are read (segments are in time order)."""
        found: list[dict[str, Any]] = []
        for path in reversed(self._overlapping(query.since, query.until)):
            for event in reversed(self._lines(path)):
                if query.matches(event):
                    found.append(event)
                    if query.limit is not None and len(found) >= query.limit:
                        return found
        return found

    def _overlapping(self, since: datetime | None, until: datetime | None) -> list[Path]:
        """The segments that may hold records of [since, until]: a segment's records are no
        older than its first and older than the next one's first."""
        segments = self.segments()
        starts = [first_time(p) for p in segments]
        keep = []
        for number, path in enumerate(segments):
            first = starts[number]
            following = next((t for t in starts[number + 1:] if t is not None), None)
            if first is None or (until is not None and parse_time(first) > until) or \
                    (since is not None and following is not None
                     and parse_time(following) <= since):
                continue
            keep.append(path)
        return keep

    def between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The records of [since, until], oldest first."""
        return self.newest_first(AuditQuery(since=since, until=until))[::-1]

    def _current(self) -> None:
        """Bring the receipts up to every record written (by any process), under the lock."""
        with self._locked():
            self.receipts.current(self.segments())

    def prepare(self) -> None:
        self._current()

    def summaries(self, owners: Collection[str], doc_ids: Collection[str],
                  first_day: str | None, last_day: str | None) -> list[Summary]:
        self._current()
        return self.receipts.summaries(owners, doc_ids, first_day, last_day)

    def recorded_owners(self) -> frozenset[str]:
        self._current()
        return self.receipts.recorded_owners()

    def prune(self, before: date, export: Path) -> Pruned:
        """Retention (retention.py): closed segments wholly before the day `before` exported,
        then removed, with their receipts."""
        self._current()
        with self._locked():
            segments = self.segments()
            if not segments or segments[-1].name != ACTIVE:  # no open one: keep the last
                segments = [*segments, self.dir / ACTIVE]
            return prune_segments(segments, self.receipts, before, export)
