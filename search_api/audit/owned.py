"""What an IP owner may read of the audit: who received its documents, when, how often.

Built from the audit records, reduced to (owner, document, receiving partner, kind) with a count,
the first and last time, and the count per UTC day (the owners' page draws its timeline from
it). Never a query text, a key id or a key name: another partner's questions are its own
confidential information. Only documents of the given owners appear: the owner named by the
live generation (access.yaml `owner`), or, for a document no longer indexed, the owner recorded
with the access. A partner's view passes its own partner as the one owner; an admin's view
passes every owner there is (`every_owner`), built explicitly, never "no filter".

The views read tallies, not records (`owned_view`): each audit keeps one row per (recorded
owner, document, recipient, kind, UTC day) as it writes a record (`tallies_of`; the file
audit's in receipts.py, PostgreSQL's in pks_receipts), so a view costs what the owner's rows
cost, not what the audit holds. Only a period that starts or ends inside a day reads records:
that day's, through the audit's time-ordered reading (`between`). `owned_receipts` computes the
same from records, and is the reference the tallies are tested against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from indexer.store.reader import Generation
from search_api.audit.tally import DOWNLOAD_SURFACES, Summary, recipients
from search_api.audit.trail import AuditQuery

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


class Tallies(Protocol):
    """What an audit answers for the owners' views (the file audit and PostgreSQL's)."""

    def summaries(self, owners: Collection[str], doc_ids: Collection[str],
                  first_day: str | None, last_day: str | None) -> list[Summary]:
        """Tallies recorded with one of `owners`, or of one of `doc_ids`, in [first, last day],
        summed per (owner, document, recipient, kind)."""
        ...

    def between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The records of [since, until]."""
        ...

    def recorded_owners(self) -> frozenset[str]:
        """Every owner recorded with a delivered access."""
        ...


def _delivered(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accesses that returned passages or a file (failed attempts delivered nothing)."""
    return [e for e in events if 200 <= int(e.get("status", 0)) < 300 and e.get("documents")]


def _current_owners(generation: Generation, doc_ids: set[str]) -> dict[str, str | None]:
    ordered = sorted(doc_ids)
    owners: dict[str, str | None] = {}
    for start in range(0, len(ordered), BATCH):
        owners.update(generation.document_owners(ordered[start:start + BATCH]))
    return owners


def every_owner_of(audit: Tallies, generation: Generation) -> frozenset[str]:
    """All owners an admin's view spans: the live generation's and those recorded with past
    accesses (documents since removed), from the tallies."""
    return frozenset(generation.owner_counts()) | audit.recorded_owners()


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
            for recipient in recipients(event):
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


def owned_view(audit: Tallies, owners: frozenset[str], generation: Generation,
               query: AuditQuery | None = None) -> list[Receipt]:
    """`owned_receipts` of every record, from the tallies: whole days from the rows, a day the
    period starts or ends inside from that day's records."""
    query = query or AuditQuery()
    first_day, last_day, edges = _split(query.since, query.until)
    table: dict[tuple[str, str, str, str], Counter[str]] = {}
    firsts: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    if first_day is None or last_day is None or first_day <= last_day:
        live = {doc for owner in owners for doc in generation.owned_documents().get(owner, ())}
        rows = audit.summaries(owners, live, first_day, last_day)
        current = _current_owners(generation, {r.doc_id for r in rows})
        for r in rows:
            owner = current[r.doc_id] if r.doc_id in current else (r.owner or None)
            if owner in owners and query.document in (None, r.doc_id) and \
                    query.partner in (None, r.recipient):
                key = (str(owner), r.doc_id, r.recipient, r.kind)
                table.setdefault(key, Counter()).update(dict(r.days))
                low, high = firsts.get(key, (r.first, r.last))
                firsts[key] = (min(low, r.first), max(high, r.last))
    for since, until in edges:
        window = AuditQuery(query.partner, query.document, since, until)
        for edge in owned_receipts(audit.between(since, until), owners, generation, window):
            key = (edge.owner, edge.doc_id, edge.partner, edge.kind)
            table.setdefault(key, Counter()).update(dict(edge.days))
            low, high = firsts.get(key, (edge.first, edge.last))
            firsts[key] = (min(low, edge.first), max(high, edge.last))
    return [Receipt(*key, days.total(), *firsts[key], tuple(sorted(days.items())))
            for key, days in sorted(table.items())]


def _split(since: datetime | None, until: datetime | None
           ) -> tuple[str | None, str | None, list[tuple[datetime, datetime]]]:
    """A period as whole UTC days [first, last] (None: unbounded) and the partial days at its
    ends as (since, until) windows."""
    edges: list[tuple[datetime, datetime]] = []
    first = last = None
    since = since.astimezone(UTC) if since is not None else None
    until = until.astimezone(UTC) if until is not None else None
    if since is not None:
        start = datetime.combine(since.date(), time(), UTC)
        first = since.date().isoformat() if since == start else \
            (since.date() + timedelta(days=1)).isoformat()
        if since != start:
            day_end = start + timedelta(days=1) - timedelta(microseconds=1)
            edges.append((since, day_end if until is None else min(until, day_end)))
    if until is not None:
        start = datetime.combine(until.date(), time(), UTC)
        end = start + timedelta(days=1) - timedelta(microseconds=1)
        last = until.date().isoformat() if until == end else \
            (until.date() - timedelta(days=1)).isoformat()
        covered = bool(edges) and since is not None and since.date() == until.date()
        if until != end and not covered:
            edges.append((start if since is None else max(since, start), until))
    return first, last, [(a, b) for a, b in edges if a <= b]

