"""Operations: /healthz, /readyz and /metrics (Prometheus). No key needed (unless configured for
/metrics), and no figure that depends on the caller: totals only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from search_api.access import Principal
from search_api.deps import AppServices, CurrentIndex, require_admin, resolve_principal
from search_api.errors import error_response
from search_api.routes import error_responses
from search_api.search import search

router = APIRouter(tags=["ops"])

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    **error_responses(e401="A key is required (PKS_METRICS_REQUIRE_ADMIN)",
                      e403="Not an admin key (PKS_METRICS_REQUIRE_ADMIN)"),
}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The index is loaded and a query ran through it",
          "content": {"application/json": {"schema": {
              "type": "object", "required": ["status", "generation"],
              "properties": {"status": {"type": "string"}, "generation": {"type": "string"}}}}}},
    **error_responses(503),
}
READINESS = Principal(key_id="readyz", partner=None, admin=True)  # never answers a caller


@router.get("/healthz")
def healthz(index: CurrentIndex) -> dict[str, str]:
    """Liveness, and which generation is served (operators check a re-index went live)."""
    return {"status": "ok", "generation": index.generation.name}


@router.get("/metrics", response_class=Response, responses=METRICS_RESPONSES,
            openapi_extra={"security": [{}, {"HTTPBearer": []}]})  # a key only if configured
def metrics(request: Request, services: AppServices) -> Response:
    """Counters and latency histograms by route template and status; the live generation.
    Open to a scraper, unless PKS_METRICS_REQUIRE_ADMIN asks for an admin key."""
    if services.settings.metrics_require_admin:
        require_admin(resolve_principal(request, services, None))
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", response_class=JSONResponse, responses=READY_RESPONSES)
def readyz(services: AppServices) -> JSONResponse:
    """Ready when the live index is loaded and one query runs through embed + vector search."""
    try:
        index = services.holder.get()
        allowed = index.access.allowed_for(READINESS, services.today())
        search(index, "readiness check", allowed, 1)
    except Exception as exc:  # whatever breaks the query path means "not ready"
        return error_response(503, "not_ready", f"the index cannot answer: {type(exc).__name__}")
    return JSONResponse({"status": "ready", "generation": index.generation.name})
