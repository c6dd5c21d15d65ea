"""One record's contribution to the owners' receipts (owned.py): a tally per delivered
document and recipient. Shared by the file audit's table (receipts.py) and PostgreSQL's
(search_api/state/postgres/audit.py), so both count alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DOWNLOAD_SURFACES = frozenset({"document", "mcp-document"})  # the rest returns passages


@dataclass(frozen=True)
class Tally:
    """One row of an audit's receipts: the accesses of one UTC day to one document by one
    recipient, of one kind, with the owner recorded with them ('' for none)."""

    owner: str
    doc_id: str
    recipient: str
    kind: str
    day: str    # YYYY-MM-DD
    count: int
    first: str  # ISO times, as the audit writes them
    last: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.owner, self.doc_id, self.recipient, self.kind, self.day)


@dataclass(frozen=True)
class Summary:
    """An audit's tallies of one (recorded owner, document, recipient, kind) over some days,
    summed where they are kept (SQLite or PostgreSQL): what an owner's view reads."""

    owner: str
    doc_id: str
    recipient: str
    kind: str
    count: int
    first: str
    last: str
    days: tuple[tuple[str, int], ...]  # (UTC day, count), oldest first

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.owner, self.doc_id, self.recipient, self.kind)


def day_counts(text: str) -> tuple[tuple[str, int], ...]:
    """'DAY COUNT,DAY COUNT,...' as the stores aggregate it -> ((day, count), ...), by day."""
    pairs = (item.split(" ") for item in text.split(",") if item)
    return tuple(sorted((day, int(count)) for day, count in pairs))


def tallies_of(event: dict[str, Any]) -> list[Tally]:
    """What one record adds to the receipts: a count for each document it delivered and each
    recipient (none for a refused or empty access)."""
    if not (200 <= int(event.get("status", 0)) < 300 and event.get("documents")):
        return []
    kind = "download" if event["surface"] in DOWNLOAD_SURFACES else "passages"
    moment = str(event["time"])
    return [Tally(str(doc.get("owner") or ""), doc["doc_id"], recipient, kind, moment[:10], 1,
                  moment, moment)
            for doc in event["documents"] for recipient in sorted(recipients(event))]


def recipients(event: dict[str, Any]) -> set[str]:
    """The key's partner (or "admin") and the partner acted for, when present."""
    who = {"admin" if event.get("admin") else str(event.get("partner"))}
    if event.get("on_behalf_of"):
        who.add(str(event["on_behalf_of"]))
    return who
