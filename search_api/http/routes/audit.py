"""Reading the audit: the whole record for admins, a query-free summary for IP owners."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, Field

from search_api.audit.owned import Receipt as OwnedReceipt
from search_api.audit.owned import every_owner_of, owned_view
from search_api.audit.trail import AuditQuery, parse_time
from search_api.errors import Forbidden
from search_api.http.deps import AdminPrincipal, AppServices, Audit, CurrentIndex, OwnerCaller
from search_api.http.routes import error_responses

router = APIRouter(tags=["audit"])

ERRORS = error_responses(401, e403="This key may not read this view", e422="Invalid filter")


class AuditDocument(BaseModel):
    doc_id: str
    owner: str | None = Field(description="The partner owning the document (access.yaml).")
    passages: int = Field(description="How many of the returned passages came from it.")
    pages: list[int | None] | None = Field(
        None, description="The page each of those passages cited, as the caller received it "
                          "(null for records written before pages were recorded, and for "
                          "downloads).")


class AuditEvent(BaseModel):
    time: str = Field(description="UTC, ISO 8601.")
    key_id: str
    key_name: str
    partner: str | None = Field(description="The key's partner; null for admin keys.")
    admin: bool
    on_behalf_of: str | None
    surface: str = Field(description="search, retrieve, document (download) or mcp.")
    query: str | None
    mode: str | None
    status: int
    generation: str | None
    documents: list[AuditDocument]


class AuditEvents(BaseModel):
    events: list[AuditEvent] = Field(description="Newest first.")


class DayCount(BaseModel):
    day: str = Field(description="A UTC date, YYYY-MM-DD.")
    count: int


class Receipt(BaseModel):
    owner: str = Field(description="The partner owning the document (access.yaml `owner`).")
    doc_id: str
    partner: str = Field(description="The partner that received it; 'admin' for the host.")
    kind: str = Field(description="'passages' (search, retrieve, MCP) or 'download'.")
    count: int
    first: str
    last: str
    days: list[DayCount] = Field(description="Accesses per UTC day, oldest first (days "
                                             "without any are left out).")


class OwnedReport(BaseModel):
    owner: str
    documents: int = Field(description="Documents the partner owns in the live generation.")
    receipts: list[Receipt] = Field(description="Empty when the partner owns nothing, or when "
                                                "nobody received what it owns.")


class OwnerDocuments(BaseModel):
    owner: str
    documents: int = Field(description="Documents it owns in the live generation (0: only "
                                       "documents since removed).")


class AllOwnersReport(BaseModel):
    owners: list[OwnerDocuments] = Field(description="Every owner: named by the live "
                                                     "generation or recorded with an access.")
    receipts: list[Receipt]


def _iso(value: object) -> object:
    """An ISO date or date-time, without a zone UTC; never a bare number (which pydantic would
    take for seconds since 1970), so `to=0.5` is a 422 as the schema's date-time says."""
    return parse_time(value) if isinstance(value, str) else value


# Every time filter of the audit views: `from` and `to`.
IsoTime = Annotated[datetime, BeforeValidator(_iso)]


RECORDS_PER_REQUEST = 100  # the admin audit costs one request of the budget per 100 records


@router.get("/v1/admin/audit", response_model=AuditEvents, responses=ERRORS)
def admin_audit(
    principal: AdminPrincipal, audit: Audit, services: AppServices,
    partner: Annotated[str | None, Query(description="A partner id, or 'admin'.")] = None,
    document: Annotated[str | None, Query(description="A document id.")] = None,
    since: Annotated[IsoTime | None, Query(alias="from", description="ISO time (UTC).")] = None,
    until: Annotated[IsoTime | None, Query(alias="to", description="ISO time (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AuditEvents:
    """Every recorded access, newest first (admin keys only). A read of up to `limit` records
    costs one request of the key's rate limit per 100 of them (it was charged one already)."""
    services.limits.charge(principal, -(-limit // RECORDS_PER_REQUEST) - 1)
    found = audit.newest_first(AuditQuery(partner, document, since, until, limit))
    return AuditEvents(events=[AuditEvent.model_validate(e) for e in found])


def receipt_query(
    partner: Annotated[str | None, Query(description="Only receipts of this receiving partner "
                                                     "('admin' for the host).")] = None,
    document: Annotated[str | None, Query(description="Only this document id.")] = None,
    since: Annotated[IsoTime | None, Query(alias="from", description="ISO time (UTC).")] = None,
    until: Annotated[IsoTime | None, Query(alias="to", description="ISO time (UTC).")] = None,
) -> AuditQuery:
    """The filters of the owners' views: a period, a document, a receiving partner."""
    return AuditQuery(partner, document, since, until)


ReceiptQuery = Annotated[AuditQuery, Depends(receipt_query)]


def _receipts(found: list[OwnedReceipt]) -> list[Receipt]:
    return [Receipt(**{**vars(r), "days": [DayCount(day=d, count=n) for d, n in r.days]})
            for r in found]


@router.get("/v1/audit/owned", response_model=OwnedReport, responses=ERRORS)
def owned_audit(principal: OwnerCaller, audit: Audit, index: CurrentIndex,
                query: ReceiptQuery) -> OwnedReport:
    """Who received passages of, or downloaded, the documents the caller's partner owns.

    Counts, first/last times and accesses per day, per document and receiving partner; never
    query texts or keys. Filters: `from`, `to`, `document`, `partner`.
    """
    if principal.partner is None:
        raise Forbidden("admin keys own nothing; read every owner's receipts with "
                        "GET /v1/admin/audit/owned")
    generation = index.generation
    receipts = owned_view(audit, frozenset({principal.partner}), generation, query)
    return OwnedReport(owner=principal.partner,
                       documents=generation.owner_counts().get(principal.partner, 0),
                       receipts=_receipts(receipts))


@router.get("/v1/admin/audit/owned", response_model=AllOwnersReport, responses=ERRORS)
def all_owners_audit(
    _: AdminPrincipal, audit: Audit, index: CurrentIndex, query: ReceiptQuery,
    owner: Annotated[str | None, Query(description="Only this owner's documents.")] = None,
) -> AllOwnersReport:
    """The owners' view over every owner (admin keys only): the same receipts each owner reads
    at /v1/audit/owned, with the owner of each; filters as there, and `owner`."""
    generation = index.generation
    everyone = every_owner_of(audit, generation)
    counts = generation.owner_counts()
    chosen = everyone if owner is None else everyone & {owner}
    receipts = owned_view(audit, chosen, generation, query)
    return AllOwnersReport(
        owners=[OwnerDocuments(owner=o, documents=counts.get(o, 0)) for o in sorted(everyone)],
        receipts=_receipts(receipts))
