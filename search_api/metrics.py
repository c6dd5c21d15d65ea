"""Prometheus metrics: totals only, with bounded label values (never a partner, query or key).

- pks_http_requests_total{endpoint, method, status} and pks_http_request_duration_seconds
  (endpoint = the route template such as /v1/documents/{doc_id}, never the raw path)
- pks_searches_total{surface, mode}: accesses that returned passages or documents
- pks_audit_write_failures_total
- pks_index_info{generation, model}, pks_index_documents, pks_index_chunks: the live generation
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search_api.live import LoadedIndex

SURFACES = frozenset({"search", "retrieve", "document", "mcp", "mcp-document"})
MODES = frozenset({"dense", "lexical", "hybrid"})
PLANS = frozenset({"exact", "approximate"})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"


class IndexCollector(Collector):
    """Reads the live generation at scrape time, so a swap shows at the next scrape."""

    def __init__(self, current: Callable[[], LoadedIndex | None]) -> None:
        self._current = current
        self._counts: dict[str, tuple[int, int]] = {}

    def collect(self) -> Iterator[Metric]:
        index = self._current()
        if index is None:
            return
        generation = index.generation
        if generation.name not in self._counts:
            self._counts = {generation.name: generation.counts()}  # one generation cached
        documents, chunks = self._counts[generation.name]
        info = GaugeMetricFamily("pks_index_info", "The live index generation (value 1).",
                                 labels=["generation", "model"])
        model = str(generation.info.get("model", "")).rstrip("/").rsplit("/", 1)[-1]
        info.add_metric([generation.name, model], 1)  # the model's name, not where it lives
        yield info
        yield GaugeMetricFamily("pks_index_documents", "Documents in the live generation.",
                                value=documents)
        yield GaugeMetricFamily("pks_index_chunks", "Passages (chunks) in the live generation.",
                                value=chunks)


class OpsMetrics:
    """One registry per app (not the global one), so apps in one process never collide."""

    def __init__(self, current: Callable[[], LoadedIndex | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("pks_http_requests", "HTTP requests answered.",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("pks_http_request_duration_seconds",
                                 "Time to answer an HTTP request.",
                                 ["endpoint", "method", "status"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.searches = Counter("pks_searches", "Searches, retrievals, downloads and MCP calls.",
                                ["surface", "mode"], registry=self.registry)
        self.dense_plans = Counter("pks_dense_searches", "Dense searches by the plan that read "
                                   "the vectors: exact, or approximate (the IVF index).",
                                   ["plan"], registry=self.registry)
        self.audit_failures = Counter("pks_audit_write_failures",
                                      "Audit records that could not be written.",
                                      registry=self.registry)
        self.registry.register(IndexCollector(current))

    def access(self, surface: str, mode: str | None, plan: str | None = None) -> None:
        """Called by the audit for every access; unknown values collapse to 'other'."""
        if plan is not None:
            self.dense_plans.labels(plan if plan in PLANS else "other").inc()
        self.searches.labels(surface if surface in SURFACES else "other",
                             "default" if mode is None else mode if mode in MODES
                             else "other").inc()

    def audit_write_failed(self) -> None:
        self.audit_failures.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(router: Router, scope: Scope) -> str:
    """The matched route's template (bounded), found again if a middleware answered first."""
    route = scope.get("route")
    if route is None:
        for candidate in router.routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return route.path or "/"
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    root = scope.get("root_path", "") if scope.get("route") is route else ""
    return (root.rstrip("/") + path) or "/"


class RequestMetrics:
    """ASGI middleware (outermost): counts and times every answer, 413 and 429 included."""

    def __init__(self, app: ASGIApp, metrics: OpsMetrics, router: Router) -> None:
        self.app, self.metrics, self.router = app, metrics, router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            labels = (route_template(self.router, scope), method, str(status["code"]))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
