"""What an IP owner may read of the audit: who received its documents, when, how often.

Built from the audit records, reduced to (document, receiving partner, kind) with a count and
the first and last time. Never a query text, a key id or a key name: another partner's questions
are its own confidential information. Only documents the partner owns appear: the owner named
by the live generation (access.yaml `owner`), or, for a document no longer indexed, the owner
recorded with the access.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from indexer.store.reader import Generation
from search_api.audit import DOWNLOAD_SURFACES

BATCH = 500  # document ids per owner look-up (SQLite caps the number of bound parameters)


@dataclass(frozen=True)
class Receipt:
    doc_id: str
    partner: str  # the partner that received it ("admin" for the host's admin keys)
    kind: str     # "passages" (search, retrieve, MCP) or "download" (the original file)
    count: int    # how many accesses returned it
    first: str    # UTC ISO time of the first and the last of them
    last: str


def _recipients(event: dict[str, Any]) -> set[str]:
    """The key's partner (or "admin") and the partner acted for, when present."""
    who = {"admin" if event.get("admin") else str(event.get("partner"))}
    if event.get("on_behalf_of"):
        who.add(str(event["on_behalf_of"]))
    return who


def _current_owners(generation: Generation, doc_ids: set[str]) -> dict[str, str | None]:
    ordered = sorted(doc_ids)
    owners: dict[str, str | None] = {}
    for start in range(0, len(ordered), BATCH):
        owners.update(generation.document_owners(ordered[start:start + BATCH]))
    return owners


def owned_receipts(events: Iterable[dict[str, Any]], partner: str,
                   generation: Generation) -> list[Receipt]:
    """Receipts of the documents `partner` owns, sorted by document, then partner, then kind."""
    delivered = [e for e in events if 200 <= int(e.get("status", 0)) < 300 and e.get("documents")]
    current = _current_owners(generation, {d["doc_id"] for e in delivered for d in e["documents"]})
    table: dict[tuple[str, str, str], list[Any]] = {}
    for event in delivered:
        kind = "download" if event["surface"] in DOWNLOAD_SURFACES else "passages"
        for doc in event["documents"]:
            owner = current[doc["doc_id"]] if doc["doc_id"] in current else doc.get("owner")
            if owner != partner:
                continue
            for recipient in _recipients(event):
                row = table.setdefault((doc["doc_id"], recipient, kind),
                                       [0, event["time"], event["time"]])
                row[0] += 1
                row[1], row[2] = min(row[1], event["time"]), max(row[2], event["time"])
    return [Receipt(doc_id, who, kind, count, first, last)
            for (doc_id, who, kind), (count, first, last) in sorted(table.items())]
