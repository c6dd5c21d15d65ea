"""GET /v1/documents/{doc_id}: the original file, with exactly the rights of search."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from search_api.errors import ApiError
from search_api.http.deps import Allowed, AppSettings, Audit, CurrentIndex, DocumentsCaller
from search_api.http.routes import error_responses
from search_api.retrieval.originals import fetch_document

router = APIRouter(tags=["documents"])


@router.get("/v1/documents/{doc_id:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The document as indexed"},
                       **error_responses(401, 403, 404, 410, 503)})
def get_document(doc_id: str, index: CurrentIndex, allowed: Allowed,
                 settings: AppSettings, principal: DocumentsCaller, audit: Audit) -> Response:
    """The original file (a JSONL record: its indexed text). PDFs open at a page with `#page=N`.
    A document this key may not see is a 404, the same as one that does not exist."""
    try:
        doc = fetch_document(index, allowed, doc_id, settings.corpus)
    except ApiError as exc:  # a refused download is audited too (never in the owners' view)
        audit.record(principal, "document", generation=index.generation, query=doc_id,
                     doc_ids=[], status=exc.status)
        raise
    audit.record(principal, "document", generation=index.generation, query=doc_id,
                 doc_ids=[doc_id])
    return Response(doc.body, media_type=doc.media_type, headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(doc.filename)}",
        "X-Content-Type-Options": "nosniff",
        # Opened straight from the API origin, an HTML file must not run script there.
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    })
