"""The API server's side of each request on Ray: every shard of the generation is asked at
once (`RayShards`), and the server waits for all answers. The applications themselves are
deployed, placed and deleted by lifecycle.py; this module only calls them.

A call that fails (a replica killed mid-query, none ready yet) is retried with back-off until
PKS_RAY_RETRY_SECONDS have passed: Serve routes the retry to a live replica or the one that
replaced the dead one, so the client sees an answer, not an error.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import ray

from indexer.store.bm25 import LexicalStats
from indexer.store.reader import Generation
from search_api.access.allowed import AllowedSet
from search_api.cluster.shard import ShardServer
from search_api.retrieval.shards import Answer, Question, counted, load_postings

log = logging.getLogger(__name__)
shard_deployment: Any = ShardServer  # a Serve Deployment (its decorator is untyped)
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 2.0  # seconds between retries of one shard's call


class RayShards:
    """Every shard of one generation on the cluster, asked each question at once."""

    def __init__(self, names: list[str], handles: list[Any], retry_seconds: float,
                 release: Callable[[], None] = lambda: None, *, by_grpc: bool = True,
                 generation: Generation | None = None) -> None:
        self.names, self.handles, self.retry_seconds = names, handles, retry_seconds
        # The calls that name the allowed set by its key go over Serve's gRPC transport,
        # straight to the replica's port (`_by_reference=False`): no object store, no
        # streamed reply (docs/SCALE.md: 2.8 -> 1.3 ms of this process's CPU per round of two
        # calls). A call carrying the set's object reference needs Ray's own transport.
        self.direct = [h.options(_by_reference=False) for h in handles] if by_grpc else handles
        self._release = release  # deletes the applications (lifecycle.RayCluster)
        self._refs: dict[int, tuple[weakref.ref[np.ndarray], Any]] = {}
        self._lock = threading.Lock()
        self.retries = 0  # calls that failed and were sent again (for the logs and tests)
        self.generation = generation
        if generation is not None:
            load_postings(generation)

    def _allowed_ref(self, allowed: AllowedSet) -> Any:
        """The allowed set in the object store, put once per set while the set lives (the
        server keeps each partner's set per day), so a query sends a reference, not ids."""
        key = id(allowed.ids)
        with self._lock:
            found = self._refs.get(key)
            if found is not None and found[0]() is allowed.ids:
                return found[1]
        ref = ray.put(allowed.ids)
        with self._lock:
            self._refs[key] = (weakref.ref(allowed.ids), ref)
        weakref.finalize(allowed.ids, self._forget, key)
        return ref

    def _forget(self, key: int) -> None:
        with self._lock:
            self._refs.pop(key, None)

    def ask(self, question: Question, allowed: AllowedSet) -> list[Answer]:
        """Every shard's answer. The allowed set is named by its key; a replica that does not
        hold it yet answers None and is asked again with the set's reference
        (search_api/cluster/shard.py)."""
        ref = self._allowed_ref(allowed)
        key = ref.hex()
        answers = self._gather([partial(h.ask.remote, key, question) for h in self.direct])
        missing = [at for at, found in enumerate(answers) if found is None]
        if missing:
            again = self._gather([partial(self.handles[at].ask.remote, key, question,
                                          allowed=[ref]) for at in missing])
            for at, found in zip(missing, again, strict=True):
                answers[at] = found
        return answers

    def lexical_stats(self, terms: Sequence[str], allowed: AllowedSet) -> LexicalStats:
        """Counted here, over the shards' postings as this process maps them: no round."""
        if self.generation is None:
            raise RuntimeError("this server opened no shard's postings")
        return counted(self.generation, terms, allowed)

    def _gather(self, calls: list[Callable[[], Any]]) -> list[Any]:
        """Send every call, then collect each answer, retrying a failed one until the
        deadline; the last error is raised if a shard never answers."""
        deadline = time.monotonic() + self.retry_seconds
        pending = [call() for call in calls]
        answers = []
        for call, response in zip(calls, pending, strict=True):
            backoff = FIRST_BACKOFF
            while True:
                try:
                    answers.append(response.result(
                        timeout_s=max(0.1, deadline - time.monotonic())))
                    break
                except Exception as exc:  # a replica died, or none is ready yet
                    if time.monotonic() + backoff >= deadline:
                        raise
                    with self._lock:
                        self.retries += 1
                    log.warning("shard call failed (%s: %s); retrying", type(exc).__name__,
                                str(exc)[:200])
                    time.sleep(backoff)
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    response = call()
        return answers

    def close(self) -> None:
        self._release()
