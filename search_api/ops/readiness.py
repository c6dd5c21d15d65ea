"""Readiness: the live index loaded and a query running through embedding and search, checked at
most once per interval whoever asks, so that /readyz, which answers without a key, costs a
caller a cached answer and never a search of its own."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date

from search_api.identity.principal import Principal
from search_api.retrieval.live import IndexHolder
from search_api.retrieval.search import search

READINESS = Principal(key_id="readyz", partner=None, admin=True)  # never answers a caller


@dataclass(frozen=True)
class Ready:
    ready: bool
    generation: str
    problem: str | None = None  # why not, in a word (the exception's type), when not ready


class Readiness:
    def __init__(self, holder: IndexHolder, every_seconds: float) -> None:
        self.holder, self.every = holder, every_seconds
        self.checks = 0  # queries actually run (read by tests)
        self._last: Ready | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def check(self, today: date) -> Ready:
        """The last outcome if it is recent and of the live generation, else a fresh one."""
        with self._lock:  # callers that arrive during a check wait for its outcome
            index = self.holder.get()
            name = index.generation.name
            last = self._last
            if last is not None and last.generation == name and \
                    time.monotonic() - self._at < self.every:
                return last
            self.checks += 1
            try:
                allowed = index.access.allowed_for(READINESS, today)
                search(index, "readiness check", allowed, 1)
                outcome = Ready(True, name)
            except Exception as exc:  # whatever breaks the query path means "not ready"
                outcome = Ready(False, name, type(exc).__name__)
            self._last, self._at = outcome, time.monotonic()
            return outcome
