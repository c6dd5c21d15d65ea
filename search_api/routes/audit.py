"""Reading the audit: the whole record for admins, a query-free summary for IP owners."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from search_api.audit import AuditQuery
from search_api.deps import AdminPrincipal, Audit, CurrentIndex, CurrentPrincipal
from search_api.errors import Forbidden
from search_api.owned import owned_receipts
from search_api.routes import error_responses

router = APIRouter(tags=["audit"])

ERRORS = error_responses(401, e403="This key may not read this view", e422="Invalid filter")


class AuditDocument(BaseModel):
    doc_id: str
    owner: str | None = Field(description="The partner owning the document (access.yaml).")
    passages: int = Field(description="How many of the returned passages came from it.")


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


class Receipt(BaseModel):
    doc_id: str
    partner: str = Field(description="The partner that received it; 'admin' for the host.")
    kind: str = Field(description="'passages' (search, retrieve, MCP) or 'download'.")
    count: int
    first: str
    last: str


class OwnedReport(BaseModel):
    owner: str
    receipts: list[Receipt] = Field(description="Empty when the partner owns nothing, or when "
                                                "nobody received what it owns.")


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/v1/admin/audit", response_model=AuditEvents, responses=ERRORS)
def admin_audit(
    _: AdminPrincipal, audit: Audit,
    partner: Annotated[str | None, Query(description="A partner id, or 'admin'.")] = None,
    document: Annotated[str | None, Query(description="A document id.")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="ISO time (UTC).")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="ISO time (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AuditEvents:
    """Every recorded access, newest first (admin keys only)."""
    found = audit.newest_first(AuditQuery(partner, document, _utc(since), _utc(until), limit))
    return AuditEvents(events=[AuditEvent.model_validate(e) for e in found])


@router.get("/v1/audit/owned", response_model=OwnedReport, responses=ERRORS)
def owned_audit(principal: CurrentPrincipal, audit: Audit, index: CurrentIndex) -> OwnedReport:
    """Who received passages of, or downloaded, the documents the caller's partner owns.

    Counts and first/last times per document and receiving partner; never query texts or keys.
    """
    if principal.partner is None:
        raise Forbidden("admin keys own nothing; read everything with GET /v1/admin/audit")
    receipts = owned_receipts(audit.events(), principal.partner, index.generation)
    return OwnedReport(owner=principal.partner,
                       receipts=[Receipt(**vars(r)) for r in receipts])
