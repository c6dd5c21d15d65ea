"""One shard as a Ray Serve deployment: runs inside a Ray replica, never in the API server.

The replica opens its shard's directory read-only (the index directory must be on a path every
node of the cluster sees: a shared file system, or the same copy on each node) and answers the
question every shard answers (search_api/retrieval/shards.py). The allowed set arrives as a
reference to one object in Ray's object store, put there once per allowed set by the server;
the replica fetches it once and keeps it, so its store's plan cache (rows, IVF selector) is
reused across queries exactly as in one process; later queries name the set by its key.
Its Serve gRPC port listens on the address it is given, by default its node's Ray address, not
every interface (listen.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import serve

from indexer.store.bm25 import LexicalStats
from indexer.store.reader import Generation
from search_api.cluster.listen import serve_port_on
from search_api.retrieval.fusion import Ranked
from search_api.retrieval.shards import DenseAnswer, Weights, shard_dense

ALLOWED_KEPT = 64  # allowed sets a replica keeps (one per partner and day, as the server does)


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

    def _resolve(self, key: str, ref: Any) -> np.ndarray:
        found = self._cached(key)
        if found is not None:
            return found
        ids = np.asarray(ray.get(ref), dtype=np.int64)
        if ids.flags.writeable:  # read-only: the store then caches its plan for this set
            ids = ids.copy()
            ids.setflags(write=False)
        with self._lock:
            self._allowed[key] = ids
            while len(self._allowed) > ALLOWED_KEPT:
                self._allowed.popitem(last=False)
        return ids

    def _ids(self, key: str, allowed: list[Any] | None) -> np.ndarray | None:
        """The allowed set named `key`. A replica that does not hold it yet answers None, and
        the server asks again with `allowed`: a one-element list holding the set's object
        reference (nested, so Ray hands over the reference, not the array). A reference in the
        arguments costs Ray's ownership bookkeeping on every call (measured: 6.1 ms against
        4.4 ms per call on the loaded 2-core machine), so it is sent only to a replica that
        lacks the set."""
        return self._cached(key) if allowed is None else self._resolve(key, allowed[0])

    def dense(self, key: str, vector: np.ndarray, k: int,
              allowed: list[Any] | None = None) -> DenseAnswer | None:
        """The top k within the allowed set, or None (see `_ids`)."""
        ids = self._ids(key, allowed)
        return None if ids is None else shard_dense(self.generation, vector, ids, k)

    def lexical_stats(self, key: str, terms: list[str],
                      allowed: list[Any] | None = None) -> LexicalStats | None:
        """BM25's statistics over this shard's part of the allowed set, or None."""
        ids = self._ids(key, allowed)
        return None if ids is None else self.generation.lexical_stats(terms, ids)

    def lexical_search(self, key: str, terms: list[str], k: int, weights: Weights,
                       stats: LexicalStats, allowed: list[Any] | None = None) -> Ranked | None:
        """BM25 top k within the allowed set scored with the summed `stats`, or None."""
        ids = self._ids(key, allowed)
        return None if ids is None else \
            self.generation.lexical_search(terms, ids, k, weights, stats)

    def ready(self) -> str:
        return self.generation.name
