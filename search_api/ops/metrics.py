"""Prometheus metrics: totals only, with bounded label values (never a partner, query or key).

- pks_http_requests_total{endpoint, method, status} and pks_http_request_duration_seconds
  (endpoint = the route template such as /v1/documents/{doc_id}, never the raw path)
- pks_searches_total{surface, mode}: accesses that returned passages or documents
- pks_audit_write_failures_total
- pks_index_info{generation, model}, pks_index_documents, pks_index_chunks: the live generation
- pks_build_*: the newest build (its generation's report) and the last recorded run, read from
  the index directory at scrape time (BuildCollector; docs/OPERATIONS.md, "Monitoring")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.store.generations import list_generations
from indexer.store.runs import read_runs
from search_api.ops.builds import Build, build_of, epoch
from search_api.retrieval.live import LoadedIndex

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


class BuildCollector(Collector):
    """The batch job's outcome, read from the index directory at each scrape: the newest kept
    generation's report (the last successful build) and INDEX/runs.jsonl (the last run, failed
    or not). Nothing is exported for what was never recorded, so an alert can tell "no data"."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def collect(self) -> Iterator[Metric]:
        generations = list_generations(self._root)
        if generations:
            yield from self._newest(build_of(generations[-1]))
        runs = read_runs(self._root, 1)
        if runs:
            run = runs[0]
            yield from _gauge("pks_build_last_run_exit_code", "Exit code of the last recorded "
                              "build run: 0 ok, 1 failed, 2 configuration, 3 published with "
                              "skips, 4 locked out, 137 interrupted (killed).", run.exit_code)
            yield from _gauge("pks_build_last_run_timestamp_seconds",
                              "When the last recorded build run finished.", epoch(run.finished_at))
            yield from _gauge("pks_build_last_run_duration_seconds",
                              "How long the last recorded build run took.", run.seconds)

    @staticmethod
    def _newest(build: Build) -> Iterator[Metric]:
        yield from _gauge("pks_build_last_success_timestamp_seconds", "When the newest kept "
                          "generation was published (the last successful build).",
                          epoch(build.finished_at))
        yield from _gauge("pks_build_duration_seconds", "How long the last successful build "
                          "took.", build.seconds)
        for name, label, text, counts in (
                ("pks_build_documents", "change",
                 "Documents of the last successful build, by change since the one before.",
                 {"added": build.added, "changed": build.changed, "unchanged": build.unchanged,
                  "deleted": build.deleted}),
                ("pks_build_files", "outcome",
                 "Files of the last successful build: parsed, carried over unread, skipped, "
                 "or failed and kept in their previous version.",
                 {"parsed": build.files_parsed, "carried": build.files_carried,
                  "skipped": len(build.skipped), "kept_previous": len(build.kept_previous)}),
                ("pks_build_chunks", "source",
                 "Chunks of the last successful build: embedded by it, or reused.",
                 {"embedded": build.embedded, "reused": build.reused})):
            family = GaugeMetricFamily(name, text, labels=[label])
            for value, count in counts.items():
                if count is not None:  # a report written before the field existed
                    family.add_metric([value], count)
            yield family


def _gauge(name: str, text: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, text, value=value)


class OpsMetrics:
    """One registry per app (not the global one), so apps in one process never collide."""

    def __init__(self, current: Callable[[], LoadedIndex | None], root: Path) -> None:
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
        self.registry.register(BuildCollector(root))

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
