"""The FastAPI application over assembled services (services.py): routes live in routes/, one
router per surface, and are only included here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import faiss
from fastapi import FastAPI

from search_api.http.body_limit import BodyLimit
from search_api.http.error_handlers import install_error_handlers
from search_api.http.request_id import RequestId
from search_api.http.routes import (
    audit,
    builds,
    docs,
    documents,
    error_responses,
    me,
    ops,
    page,
    retrieve,
)
from search_api.http.routes import mcp as mcp_routes
from search_api.http.routes import search as search_routes
from search_api.ops.metrics import RequestMetrics
from search_api.settings import ApiSettings
from search_api.state.services import Services

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
DESCRIPTION = """Semantic search over partner documents. Every result is a passage the calling
key's partner may see today: access rights are applied inside the vector search, so a partner
always gets its true top-k. Authenticate with `Authorization: Bearer <API key>`."""


def _api(lifespan: Lifespan | None = None) -> FastAPI:
    """The routes and their documentation: everything but what serves them."""
    app = FastAPI(title="Partner knowledge search", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # docs: served offline
    install_error_handlers(app)
    # The limits answer on every route, and so does an unreachable shared key store or audit.
    app.router.responses.update(error_responses(413, 429, 503))
    for router in (ops.router, search_routes.router, documents.router, page.router,
                   docs.router, audit.router, retrieve.router, me.router, builds.router):
        app.include_router(router)
    app.router.routes.append(mcp_routes.route)
    return app


def openapi_schema() -> dict[str, Any]:
    """The API's OpenAPI document, without an index (what /openapi.json serves)."""
    return _api().openapi()


def create_app(services: Services) -> FastAPI:
    """The HTTP API over `services`; the lifespan follows new generations and runs MCP."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        faiss.omp_set_num_threads(services.settings.faiss_threads)
        services.watch()
        services.keep_audit()
        try:
            async with mcp_routes.serving(app):
                yield
        finally:
            services.close()

    app = _api(lifespan)
    app.state.services = services
    _install_limits(app, services)
    return app


def worker_app() -> FastAPI:
    """One process of `serve --workers N` (uvicorn imports it by name in each worker): the
    service assembled from the environment the parent checked and completed."""
    logging.basicConfig(level=logging.INFO,
                        format="%(levelname)s %(name)s [worker %(process)d]: %(message)s")
    environment: dict[str, Any] = {}  # every setting from PKS_* (mypy: no pydantic plugin)
    return create_app(Services.open(ApiSettings(**environment)))


def _install_limits(app: FastAPI, services: Services) -> None:
    """Metrics and the body limit (docs/OPERATIONS.md, "Metrics and limits"); the rate limit is
    charged where the caller is known (deps.py).

    Middleware order, outermost first: the request id (every answer names it), metrics (sees
    every answer, 413 and 429 included), body size.
    """
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=services.metrics, router=app.router)
    app.add_middleware(RequestId)
