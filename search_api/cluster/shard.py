"""One shard as a Ray Serve deployment: runs inside a Ray replica, never in the API server.

The replica opens its shard's directory read-only (the index directory must be on a path every
node of the cluster sees: a shared file system, or the same copy on each node) and answers the
question every shard answers (search_api/retrieval/shards.py). The allowed set arrives as a
reference to one object in Ray's object store, put there once per allowed set by the server;
the replica fetches it once and keeps it, so its store's plan cache (rows, IVF selector) is
reused across queries exactly as in one process; later queries name the set by its key.
Its Serve gRPC port listens on the address it is given, by default its node's Ray address, not
every interface (listen.py); the API server's calls arrive there.

Its methods are coroutines that compute at once, and Serve runs them on the replica's own event
loop (REPLICA_ENV): a question costs no hop to another thread and back, which Serve's defaults
(user code on a loop of its own thread, a synchronous method in a thread pool) add to every call.
A replica answers one question at a time, as its one CPU would anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from indexer.store.reader import Generation
from search_api.cluster.listen import serve_port_on
from search_api.retrieval.shards import Answer, Question, answer

ALLOWED_KEPT = 64  # allowed sets a replica keeps (one per partner and day, as the server does)
# Set in each replica's process before Serve is imported there (a runtime_env, lifecycle.py).
REPLICA_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}


@serve.deployment
class ShardServer:
    """Answers top-k questions for one shard of one generation."""

    def __init__(self, path: str, listen: str | None = None) -> None:
        serve_port_on(listen)  # where this replica's Serve port listens (None: its node's address)
        self.generation = Generation(Path(path))
        self.generation.lexical_index()  # the postings, before the first query
        self._allowed: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, key: str) -> np.ndarray | None:
        with self._lock:
            found = self._allowed.get(key)
            if found is not None:
                self._allowed.move_to_end(key)
            return found

    async def _resolve(self, key: str, ref: Any) -> np.ndarray:
        found = self._cached(key)
        if found is not None:
            return found
        ids = np.asarray(await ref, dtype=np.int64)
        if ids.flags.writeable:  # read-only: the store then caches its plan for this set
            ids = ids.copy()
            ids.setflags(write=False)
        with self._lock:
            self._allowed[key] = ids
            while len(self._allowed) > ALLOWED_KEPT:
                self._allowed.popitem(last=False)
        return ids

    async def _ids(self, key: str, allowed: list[Any] | None) -> np.ndarray | None:
        """The allowed set named `key`. A replica that does not hold it yet answers None, and
        the server asks again with `allowed`: a one-element list holding the set's object
        reference (nested, so Ray hands over the reference, not the array). A reference in the
        arguments costs Ray's ownership bookkeeping on every call (measured: 6.1 ms against
        4.4 ms per call on the loaded 2-core machine), so it is sent only to a replica that
        lacks the set."""
        return self._cached(key) if allowed is None else await self._resolve(key, allowed[0])

    async def ask(self, key: str, question: Question,
                  allowed: list[Any] | None = None) -> Answer | None:
        """This shard's answer within the allowed set, or None (see `_ids`)."""
        ids = await self._ids(key, allowed)
        return None if ids is None else answer(self.generation, question, ids)

    def ready(self) -> str:
        return self.generation.name
