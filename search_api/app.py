"""The FastAPI application: the lifespan loads the index once; routes live in routes/, one
router per surface, and are only included here."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faiss
from fastapi import FastAPI

from search_api.audit import AuditLog
from search_api.deps import AppState
from search_api.errors import install_error_handlers
from search_api.keys import KeyStore
from search_api.limits import BodyLimit, RateLimit
from search_api.live import IndexHolder, LoadedIndex
from search_api.metrics import OpsMetrics, RequestMetrics
from search_api.routes import audit, docs, documents, ops, page, retrieve
from search_api.routes import mcp as mcp_routes
from search_api.routes import search as search_routes
from search_api.schemas import ErrorResponse
from search_api.settings import ApiSettings
from search_api.sso import SsoGate

log = logging.getLogger(__name__)

DESCRIPTION = """Semantic search over partner documents. Every result is a passage the calling
key's partner may see today: access rights are applied inside the vector search, so a partner
always gets its true top-k. Authenticate with `Authorization: Bearer <API key>`."""


def _watch(holder: IndexHolder, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            holder.refresh()
        except Exception:  # the watcher must outlive a bad generation
            log.exception("index refresh failed")


def create_app(settings: ApiSettings, state: AppState | None = None) -> FastAPI:
    """Build the app; the index and model load in the lifespan, once."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        faiss.omp_set_num_threads(settings.faiss_threads)
        app.state.pks = state or AppState(
            IndexHolder(settings.index, settings.torch_threads, settings.batching()),
            KeyStore(settings.index))
        stop = threading.Event()
        if settings.reload_seconds > 0:
            threading.Thread(target=_watch, args=(app.state.pks.holder, settings.reload_seconds,
                                                  stop), daemon=True, name="index-watch").start()
        async with mcp_routes.serving(app):
            yield
        stop.set()
        app.state.audit.close()

    app = FastAPI(title="Partner knowledge search", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # docs: served offline
    app.state.settings = settings
    app.state.sso = SsoGate.from_settings(settings)  # a bad users table stops start-up here
    install_error_handlers(app)
    _install_operations(app, settings)
    for router in (ops.router, search_routes.router, documents.router, page.router,
                   docs.router, audit.router, retrieve.router):
        app.include_router(router)
    app.router.routes.append(mcp_routes.route)
    return app


def _live(app: FastAPI) -> LoadedIndex | None:
    """The served index, or None before the lifespan has loaded it."""
    state: AppState | None = getattr(app.state, "pks", None)
    return state.holder.get() if state is not None else None


def _install_operations(app: FastAPI, settings: ApiSettings) -> None:
    """Audit, metrics and limits (README: "Audit", "Metrics and limits").

    Middleware order, outermost first: metrics (sees every answer, 413 and 429 included),
    body size, rate limit.
    """
    app.state.metrics = OpsMetrics(lambda: _live(app))
    app.state.audit = AuditLog(settings.index, max_bytes=settings.audit_max_bytes,
                               max_age_seconds=settings.audit_max_age_hours * 3600,
                               fsync_seconds=settings.audit_fsync_seconds,
                               observer=app.state.metrics)
    app.router.responses.update({  # declared on every route included after this
        413: {"model": ErrorResponse, "description": "Request body over PKS_MAX_BODY_BYTES"},
        429: {"model": ErrorResponse, "description": "Too many requests with this key; see "
                                                     "the Retry-After header"},
    })
    app.add_middleware(RateLimit, rate_per_minute=settings.rate_limit_per_minute,
                       burst=settings.rate_limit_burst,
                       user_header=settings.user_header if settings.trust_user_header else None)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics, router=app.router)
