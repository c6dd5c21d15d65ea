"""POST /v1/retrieve: passages for a chat bot, packed into a token budget with citations."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter

from search_api.http.deps import AppServices, Audit, CurrentIndex, RetrieveCaller
from search_api.http.routes import error_responses
from search_api.http.schemas import RetrievedPassage, RetrieveRequest, RetrieveResponse
from search_api.retrieval.retrieve import Retrieval, retrieve

router = APIRouter(tags=["retrieve"])


def model_name(model: str) -> str:
    """A readable model name without the server's directories ('.../all-minilm/model')."""
    parts = PurePath(model).parts
    return "/".join(parts[-2:]) if len(parts) > 1 and PurePath(model).is_absolute() else model


def to_response(result: Retrieval, tokenizer: str) -> RetrieveResponse:
    """The packed passages as the API (and the MCP tool) return them."""
    return RetrieveResponse(
        passages=[RetrievedPassage(
            number=p.number, citation=p.citation, doc_id=p.first.doc_id, title=p.first.title,
            path=p.first.path, page=p.pages.cited, page_end=p.pages.last,
            pages=p.pages.span,
            section=p.first.section, ocr=any(h.passage.ocr for h in p.hits),
            chunk_ids=[h.passage.chunk_id for h in p.hits], score=round(p.score, 6),
            tokens=p.tokens, truncated=p.truncated, text=p.text,
        ) for p in result.passages],
        context=result.context, tokens=result.tokens, tokenizer=tokenizer)


@router.post("/v1/retrieve", response_model=RetrieveResponse,
             responses=error_responses(401, 403, 422, 503))
def retrieve_passages(body: RetrieveRequest, index: CurrentIndex, principal: RetrieveCaller,
                      services: AppServices, audit: Audit) -> RetrieveResponse:
    """Passages for grounding an answer: the best chunks the caller may see, neighbouring
    chunks of one document merged, each with a citation (`[1] title, p. 4`), packed best first
    into `context` without exceeding `max_tokens` (counted with the embedding model's
    tokenizer). A caller with nothing visible gets 200, no passages and an empty context."""
    allowed = index.access.allowed_for(principal, services.today(), body.on_behalf_of)
    result = retrieve(index, body.query, allowed, body.max_tokens, body.top_k)
    audit.record(principal, "retrieve", generation=index.generation, query=body.query,
                 doc_ids=[p.first.doc_id for p in result.passages], on_behalf_of=body.on_behalf_of,
                 approximate=result.approximate, pages=[p.pages.cited for p in result.passages])
    return to_response(result, model_name(index.embedder.model))
