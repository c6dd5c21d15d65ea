"""Audit retention (PKS_AUDIT_RETENTION_DAYS): records older than the retention are exported,
then removed, with their receipts; nothing is removed that was not exported first.

The file audit (trail.py) is pruned by whole closed segments: a segment whose last record is
older than the first retained day is copied, gzipped, into the export directory (synced, then
renamed into place), and only then deleted. A new segment starts each UTC day, so a day's
records leave together. PostgreSQL's audit (search_api/state/postgres/audit.py) writes the rows
before the day to one gzipped file of JSON lines the same way, then deletes them. Either way the
export holds the records exactly as the audit held them, one JSON object a line.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from indexer.store.layout import fsync_dir
from search_api.audit.receipts import ReceiptIndex, first_time

log = logging.getLogger(__name__)
TAIL = 65_536  # bytes read from a segment's end to find its last record


@dataclass(frozen=True)
class Pruned:
    """What a retention run removed: the records before `before` (a UTC day), exported first to
    `files` (gzipped JSON lines, one record a line, as the audit wrote them)."""

    before: str
    records: int
    files: tuple[str, ...]


def first_kept_day(retention_days: int, today: date | None = None) -> date:
    """The oldest UTC day a retention of `retention_days` keeps (today counts as one)."""
    return (today or datetime.now(UTC).date()) - timedelta(days=retention_days - 1)


def last_time(path: Path) -> str | None:
    """The time of a segment's last readable record."""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - TAIL))
        lines = handle.read().splitlines()
    for line in reversed(lines):
        try:
            return str(json.loads(line)["time"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def export_file(source: Path, target: Path) -> None:
    """`source` gzipped to `target`, synced before it takes its name."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with open(source, "rb") as read, gzip.open(partial, "wb") as write:
        shutil.copyfileobj(read, write)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    fsync_dir(target.parent)


def prune_segments(segments: list[Path], receipts: ReceiptIndex, before: date,
                   export: Path) -> Pruned:
    """Export and remove the closed segments (all but the last, the open one) all of whose
    records are older than `before`; the caller holds the audit's lock. Their receipts go with
    them."""
    cutoff = before.isoformat()
    files: list[str] = []
    records = 0
    for path in segments[:-1]:
        newest = last_time(path)
        if newest is None or newest[:10] >= cutoff:
            continue
        name = (first_time(path) or newest).replace(":", "").replace(".", "")
        target = export / f"audit-{name}-{path.stem}.jsonl.gz"
        export_file(path, target)
        with open(path, "rb") as handle:
            records += sum(1 for line in handle if line.strip())
        path.unlink()
        files.append(str(target))
        log.info("audit segment %s exported to %s and removed", path.name, target)
    if files:
        fsync_dir(segments[0].parent)
    receipts.forget_before(cutoff)
    return Pruned(cutoff, records, tuple(files))
