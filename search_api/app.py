"""The FastAPI application: routes are thin; access and search live below them."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import faiss
from fastapi import FastAPI

from search_api.deps import Allowed, AppState, CurrentIndex
from search_api.errors import install_error_handlers
from search_api.keys import KeyStore
from search_api.live import IndexHolder
from search_api.schemas import ErrorResponse, SearchRequest, SearchResponse, SearchResult
from search_api.search import search
from search_api.settings import ApiSettings

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
            IndexHolder(settings.index, settings.torch_threads), KeyStore(settings.index))
        stop = threading.Event()
        if settings.reload_seconds > 0:
            threading.Thread(target=_watch, args=(app.state.pks.holder, settings.reload_seconds,
                                                  stop), daemon=True, name="index-watch").start()
        yield
        stop.set()

    app = FastAPI(title="Partner knowledge search", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    install_error_handlers(app)
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorResponse, "description": "Missing, unknown or revoked key"},
        422: {"model": ErrorResponse, "description": "Invalid request"},
    }

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/search", response_model=SearchResponse, responses=errors, tags=["search"])
    def search_passages(body: SearchRequest, index: CurrentIndex,
                        allowed: Allowed) -> SearchResponse:
        """The best passages the caller may see, best first (an empty list if there are none)."""
        results = search(index, body.query, allowed, body.top_k, body.mode)
        return SearchResponse(results=[
            SearchResult(chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, path=p.path,
                         page=p.page, section=p.section, ocr=p.ocr, text=p.text,
                         score=round(score, 6))
            for p, score in results
        ])

    return app
