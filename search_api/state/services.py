"""The service, assembled once from its settings: the index (with its embedder), keys, audit,
metrics, sign-in, limits and readiness. Keys and audit are the replica's shared state (state.py:
files beside the index, or PostgreSQL).

`serve`, `mcp` and the tests all build it here, and each component receives what it needs
instead of opening it (the audit gets the key store, the metrics the index holder). The HTTP
app (app.py) and the MCP tools (mcp_server.py) only read it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from search_api.access.budgets import RequestLimits, StreamSlots, TokenBuckets
from search_api.audit.retention import first_kept_day
from search_api.audit.trail import Audit
from search_api.identity.keys import Keys
from search_api.identity.sso import SsoGate
from search_api.ops.metrics import OpsMetrics
from search_api.ops.readiness import Readiness
from search_api.retrieval.live import IndexHolder
from search_api.retrieval.shards import LocalShards
from search_api.settings import ApiSettings
from search_api.state.shared import open_state

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 6 * 3600  # how often a server applies the audit retention


class Closeable(Protocol):
    def close(self) -> None: ...


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Services:
    settings: ApiSettings
    holder: IndexHolder
    keys: Keys
    audit: Audit
    metrics: OpsMetrics
    sso: SsoGate
    limits: RequestLimits  # request budgets per principal, refused sign-ins per address
    readiness: Readiness
    streams: StreamSlots  # open event streams per principal and in this process
    today: Callable[[], date] = utc_today  # grants expire by this date (tests move it)
    cluster: Closeable | None = None  # the Ray cluster of `serve --ray`, closed last
    release: Callable[[], None] = lambda: None  # the shared state's connections
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def open(cls, settings: ApiSettings, *, holder: IndexHolder | None = None,
             today: Callable[[], date] = utc_today) -> Services:
        """Build every component. Raises SsoConfigError for a bad users table (checked first,
        before the slow index load), StoreError or ModelLoadError for an unusable index,
        StateUnavailable for an unreachable database. `holder` lets tests share one loaded
        index between services."""
        sso = SsoGate.from_settings(settings)
        cluster = None
        if holder is None and settings.ray_address is not None:
            from search_api.cluster.lifecycle import RayCluster  # only with --ray: Ray is optional

            cluster = RayCluster.connect(settings)
        try:
            holder = holder or IndexHolder(
                settings.index, settings.torch_threads, settings.batching(),
                cluster.shards_for if cluster is not None else LocalShards,
                settings.pack_budget / settings.workers)
        except BaseException:
            if cluster is not None:
                cluster.close()
            raise
        metrics = OpsMetrics(holder.get, settings.index)
        state = open_state(settings, observer=metrics)
        state.audit.prepare()  # receipts of records from before they were kept, once
        limits = RequestLimits(
            TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
            if settings.rate_limit_per_minute > 0 else None,
            TokenBuckets(settings.auth_failures_per_minute, settings.auth_failures_per_minute)
            if settings.auth_failures_per_minute > 0 else None)
        readiness = Readiness(holder, settings.ready_check_seconds)
        streams = StreamSlots.for_process(settings.streams_per_key, settings.streams_per_server)
        return cls(settings, holder, state.keys, state.audit, metrics, sso, limits, readiness,
                   streams, today, cluster, state.close)

    def watch(self) -> None:
        """Follow CURRENT: swap in a newly published generation every PKS_RELOAD_SECONDS."""
        every = self.settings.reload_seconds
        if every <= 0:
            return
        self._stop.set()  # at most one watcher per service
        self._stop = stop = threading.Event()
        threading.Thread(target=self._follow, args=(every, stop), daemon=True,
                         name="index-watch").start()

    def keep_audit(self) -> None:
        """Apply the audit retention (PKS_AUDIT_RETENTION_DAYS) now and every few hours."""
        if self.settings.audit_retention_days <= 0:
            return
        stop = self._stop

        def prune() -> None:
            while True:
                try:
                    self.prune_audit()
                except Exception:  # the next run tries again; requests go on
                    log.exception("audit retention failed")
                if stop.wait(PRUNE_EVERY_SECONDS):
                    return

        threading.Thread(target=prune, daemon=True, name="audit-retention").start()

    def prune_audit(self) -> object:
        """Export, then remove, the audit records older than the retention keeps."""
        pruned = self.audit.prune(first_kept_day(self.settings.audit_retention_days,
                                                 self.today()), self.settings.audit_export())
        log.info("audit retention: %s", pruned)
        return pruned

    def _follow(self, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            try:
                self.holder.refresh()
            except Exception:  # the watcher must outlive a bad generation
                log.exception("index refresh failed")

    def close(self) -> None:
        """Stop following CURRENT, flush the audit and let go of the shared state's
        connections (a file audit reopens if used again; a database's pool does not)."""
        self._stop.set()
        self.release()
        try:
            self.holder.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
