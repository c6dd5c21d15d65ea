"""The served index: one immutable snapshot behind one accessor that is swapped atomically.

A request takes the snapshot once (deps.CurrentIndex) and uses it for its allowed set and its
search, so a swap in between can never mix two generations in one answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.embed.embedder import Embedder, model_reference
from indexer.store.layout import live_generation_dir
from indexer.store.reader import Generation
from indexer.store.vectors import PACK_BUDGET
from search_api.access.allowed import AccessIndex
from search_api.retrieval.batching import BatchingEmbedder
from search_api.retrieval.documents import ChunkDocuments
from search_api.retrieval.shards import LocalShards, Shards
from search_api.settings import Batching

# How a generation's shards are reached: in this process (LocalShards), or on a Ray cluster
# (search_api/cluster/, only with `serve --ray`).
ShardsFor = Callable[[Generation], Shards]
RETIRE_SECONDS = 60.0  # a replaced generation's shards stay up this long for requests on it

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedIndex:
    generation: Generation
    access: AccessIndex
    embedder: Embedder  # the generation's own model, shared by all request threads
    shards: Shards  # where its dense searches run
    documents: ChunkDocuments  # chunk id -> its document, for the fusion


def load_index(generation: Generation, embedder: Embedder | None,
               threads: int, batching: Batching | None = None,
               shards_for: ShardsFor = LocalShards) -> LoadedIndex:
    """Serve a generation; reuse the loaded model when the generation was built with it.
    Its queries are embedded in batches of concurrent requests (search_api/retrieval/batching.py),
    each worker a stream of its own on the embedding backend."""
    # Each shard's postings are loaded now (here or in its Ray replica), not by the first
    # lexical query after a swap; the shards come first, so that a cluster without room for
    # them refuses before the model loads.
    shards = shards_for(generation)
    try:
        model = model_reference(generation.info["model"])  # written before: an absolute path
        if embedder is None or embedder.model != model:
            batching = batching or Batching()
            embedder = BatchingEmbedder(
                Embedder(model, batch_size=1, threads=threads, backend=batching.backend,
                         precision=batching.precision, streams=batching.workers,
                         busy_threads=batching.busy_threads), batching)
        return LoadedIndex(generation, AccessIndex(generation), embedder, shards,
                           ChunkDocuments.of(generation))
    except BaseException:
        shards.close()  # a generation that cannot be served leaves no deployment behind
        raise


class IndexHolder:
    """Holds the live snapshot; `refresh` loads a newly published generation and swaps it in."""

    def __init__(self, root: Path, torch_threads: int, batching: Batching | None = None,
                 shards_for: ShardsFor = LocalShards, pack_budget: float = PACK_BUDGET) -> None:
        self.root = root
        self._threads = torch_threads
        self._batching = batching
        self._shards_for = shards_for
        self._pack_budget = pack_budget  # this process's share (ApiSettings.pack_budget)
        self._current = load_index(Generation.open_live(root, pack_budget), None,
                                   torch_threads, batching, shards_for)
        self._swap_lock = threading.Lock()

    def get(self) -> LoadedIndex:
        return self._current  # one attribute read: atomic under the GIL

    def refresh(self) -> bool:
        """Swap in the generation CURRENT names, if it changed. A broken one is not served."""
        path = live_generation_dir(self.root)
        if path is None or path == self._current.generation.path:
            return False
        with self._swap_lock:
            if path == self._current.generation.path:
                return False
            try:
                fresh = load_index(Generation(path, self._pack_budget), self._current.embedder,
                                   self._threads, self._batching, self._shards_for)
            except Exception:
                log.exception("cannot load generation %s; still serving %s", path.name,
                              self._current.generation.name)
                return False
            old, self._current = self._current, fresh
        # Requests that took the old snapshot finish on it; its shards go after a grace period.
        retire = threading.Timer(RETIRE_SECONDS, old.shards.close)
        retire.daemon = True
        retire.start()
        log.info("now serving generation %s", fresh.generation.name)
        return True

    def close(self) -> None:
        self._current.shards.close()
