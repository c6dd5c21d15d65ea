"""What an IP owner may read of the audit: who received its documents, when, how often.

Built from the audit records, reduced to (owner, document, receiving partner, kind) with a count,
the first and last time, and the count per UTC day (the owners' page draws its timeline from
it). Never a query text, a key id or a key name: another partner's questions are its own
confidential information. Only documents of the given owners appear: the owner named by the
live generation (access.yaml `owner`), or, for a document no longer indexed, the owner recorded
with the access. A partner's view passes its own partner as the one owner; an admin's view
passes every owner there is (`every_owner`), built explicitly, never "no filter".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.store.reader import Generation
from search_api.audit.trail import DOWNLOAD_SURFACES, AuditQuery

BATCH = 500  # document ids per owner look-up (SQLite caps the number of bound parameters)


@dataclass(frozen=True)
class Receipt:
    owner: str    # the partner owning the document
    doc_id: str
    partner: str  # the partner that received it ("admin" for the host's admin keys)
    kind: str     # "passages" (search, retrieve, MCP) or "download" (the original file)
    count: int    # how many accesses returned it
    first: str    # UTC ISO time of the first and the last of them
    last: str
    days: tuple[tuple[str, int], ...]  # (UTC date, accesses that day), oldest first


def _recipients(event: dict[str, Any]) -> set[str]:
    """The key's partner (or "admin") and the partner acted for, when present."""
    who = {"admin" if event.get("admin") else str(event.get("partner"))}
    if event.get("on_behalf_of"):
        who.add(str(event["on_behalf_of"]))
    return who


def _delivered(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accesses that returned passages or a file (failed attempts delivered nothing)."""
    return [e for e in events if 200 <= int(e.get("status", 0)) < 300 and e.get("documents")]


def _current_owners(generation: Generation, doc_ids: set[str]) -> dict[str, str | None]:
    ordered = sorted(doc_ids)
    owners: dict[str, str | None] = {}
    for start in range(0, len(ordered), BATCH):
        owners.update(generation.document_owners(ordered[start:start + BATCH]))
    return owners


def every_owner(events: Sequence[dict[str, Any]], generation: Generation) -> frozenset[str]:
    """All owners an admin's view spans: those the live generation names and those recorded
    with past accesses (documents since removed)."""
    recorded = {str(d["owner"]) for e in _delivered(events) for d in e["documents"]
                if d.get("owner")}
    return frozenset(generation.owner_counts()) | recorded


def owned_receipts(events: Iterable[dict[str, Any]], owners: frozenset[str],
                   generation: Generation, query: AuditQuery | None = None) -> list[Receipt]:
    """Receipts of the documents `owners` own, in the period of `query` (its `since`/`until`)
    and, when it names them, of its `document` and receiving `partner` only; sorted by owner,
    document, partner, kind."""
    query = query or AuditQuery()
    delivered = [e for e in _delivered(events) if query.matches(e)]
    current = _current_owners(generation, {d["doc_id"] for e in delivered for d in e["documents"]})
    table: dict[tuple[str, str, str, str], Counter[str]] = {}
    for event in delivered:
        kind = "download" if event["surface"] in DOWNLOAD_SURFACES else "passages"
        for doc in event["documents"]:
            owner = current[doc["doc_id"]] if doc["doc_id"] in current else doc.get("owner")
            if owner not in owners or query.document not in (None, doc["doc_id"]):
                continue
            for recipient in _recipients(event):
                if query.partner in (None, recipient):
                    table.setdefault((str(owner), doc["doc_id"], recipient, kind),
                                     Counter())[event["time"]] += 1
    out = []
    for (owner, doc_id, who, kind), times in sorted(table.items()):
        days: Counter[str] = Counter()
        for moment, n in times.items():
            days[moment[:10]] += n  # audit times are UTC ISO strings: the date is the prefix
        out.append(Receipt(owner, doc_id, who, kind, times.total(), min(times), max(times),
                           tuple(sorted(days.items()))))
    return out
