"""Operations: /healthz, /readyz and /metrics (Prometheus).

/healthz and /readyz answer without a key and say nothing that depends on the index's contents;
/readyz answers from a check run at most once per PKS_READY_CHECK_SECONDS (readiness.py).
/metrics holds the index's totals and every caller's activity, so only an admin key or the
configured scrape token (PKS_METRICS_TOKEN, Prometheus' `authorization` credentials) reads it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from search_api.http.deps import AppServices, CurrentIndex, require_admin, resolve_principal
from search_api.http.error_handlers import error_response
from search_api.http.routes import error_responses
from search_api.identity.bearer import bearer_token
from search_api.state.services import Services

router = APIRouter(tags=["ops"])

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    **error_responses(e401="An admin key or the scrape token (PKS_METRICS_TOKEN) is required",
                      e403="Not an admin key", e429="Too many refused sign-ins from this address"),
}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The index is loaded and a query ran through it",
          "content": {"application/json": {"schema": {
              "type": "object", "required": ["status", "generation"],
              "properties": {"status": {"type": "string"}, "generation": {"type": "string"}}}}}},
    **error_responses(e503="Not ready: no index, or the query path fails"),
}


@router.get("/healthz")
def healthz(index: CurrentIndex) -> dict[str, str]:
    """Liveness, and which generation is served (operators check a re-index went live)."""
    return {"status": "ok", "generation": index.generation.name}


def _scraper(request: Request, services: Services) -> bool:
    """The request presents the configured scrape token (compared in constant time)."""
    expected = services.settings.metrics_token
    token = bearer_token(request.headers.get("authorization"))
    if expected is None or token is None:
        return False
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    return hmac.compare_digest(
        digest, hashlib.sha256(expected.get_secret_value().strip().encode("utf-8")).digest())


@router.get("/metrics", response_class=Response, responses=METRICS_RESPONSES,
            openapi_extra={"security": [{"HTTPBearer": []}]})
def metrics(request: Request, services: AppServices) -> Response:
    """Counters and latency histograms by route template and status; the live generation's
    totals. For an admin key or the scrape token only (partners learn no totals)."""
    if not _scraper(request, services):
        require_admin(resolve_principal(request, services, None))
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", response_class=JSONResponse, responses=READY_RESPONSES)
def readyz(services: AppServices) -> JSONResponse:
    """Ready when the live index is loaded and a query runs through embed + vector search (the
    outcome of a check run at most once per PKS_READY_CHECK_SECONDS)."""
    ready = services.readiness.check(services.today())
    if not ready.ready:
        return error_response(503, "not_ready", f"the index cannot answer: {ready.problem}")
    return JSONResponse({"status": "ready", "generation": ready.generation})
