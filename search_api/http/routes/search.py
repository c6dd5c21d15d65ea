"""POST /v1/search: the best passages the caller may see, optionally within some folders."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from search_api.audit.trail import Audit as AuditTrail
from search_api.http.deps import AppServices, Audit, CurrentIndex, SearchCaller
from search_api.http.routes import error_responses
from search_api.http.schemas import SearchRequest, SearchResponse, SearchResult
from search_api.identity.principal import Principal
from search_api.retrieval.live import LoadedIndex
from search_api.retrieval.search import search
from search_api.state.services import Services

router = APIRouter(tags=["search"])


@router.post("/v1/search", response_model=SearchResponse,
             responses=error_responses(401, 403, 422, 503))
async def search_passages(body: SearchRequest, index: CurrentIndex, principal: SearchCaller,
                          services: AppServices, audit: Audit) -> SearchResponse:
    """The best passages the caller may see, best first (an empty list if there are none)."""
    # The work is blocking (the embedding, SQLite, the audit's write): one worker thread does
    # all of it. A sync endpoint would cost a second hand-off, since FastAPI then validates
    # the response in the thread pool as well (measured: a sizeable share of a request's CPU).
    return await run_in_threadpool(answer, body, index, principal, services, audit)


def answer(body: SearchRequest, index: LoadedIndex, principal: Principal, services: Services,
           audit: AuditTrail) -> SearchResponse:
    """Allowed set -> search -> audit record -> response, in the calling (worker) thread."""
    allowed = index.access.allowed_for(principal, services.today(), body.on_behalf_of)
    if body.within is not None:
        allowed = index.access.within(allowed, body.within)
    found = search(index, body.query, allowed, body.top_k, body.mode)
    results = found.results
    audit.record(principal, "search", generation=index.generation, query=body.query,
                 doc_ids=[p.doc_id for p, _ in results], mode=body.mode,
                 on_behalf_of=body.on_behalf_of, approximate=found.approximate,
                 pages=[p.page for p, _ in results])
    rights = index.access.visible_to(principal, [p.doc_id for p, _ in results],
                                     services.today())
    return SearchResponse(results=[
        SearchResult(chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, path=p.path,
                     page=p.page, pages=None if p.pages is None else list(p.pages),
                     section=p.section, ocr=p.ocr, text=p.text,
                     score=round(score, 6),
                     visible_to=None if rights is None else rights.get(p.doc_id, []))
        for p, score in results
    ])
