"""Query batching: concurrent requests' queries are embedded together in one forward pass.

Embedding the query is most of a search's cost, and a forward pass over 8 short queries costs
far less than 8 passes over one. Request threads hand their query to a small pool of embedding
workers (by default one, whose pass runs on 2 threads) and wait; a worker takes every query
waiting at that moment (up to `max_batch`) and embeds them at once. A query that arrives alone
is embedded at once, with no wait; under load, the queries that arrive while a batch is being
computed form the next batch. A worker that has just seen concurrency may wait up to
`window_ms` for more (0 by default: on 2 cores the wait cost more than it gained). (Letting a
lone query's request thread run the pass itself, without the hand-off, made one client's
latency less predictable, not lower: docs/PERFORMANCE.md.)

While queries arrive concurrently (this batch, or the last, held more than one), a pass runs on
`busy_threads` (1 by default) instead of 2: the cores are busy with requests anyway, and a
single-threaded pass spends less CPU per query than two threads that wait for each other
(docs/PERFORMANCE.md).

Each request gets its own outcome: when a batch fails (one query the tokenizer refuses), its
queries are embedded again one by one, so only the query that fails gets the error and every
other caller in the batch its vector.

`BatchingEmbedder` is the loaded Embedder itself (same model, tokenizer, sizes, same `embed` for
documents) whose `embed_query` goes through the batcher, so every caller keeps the Embedder
interface and nothing else changes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from indexer.embed.embedder import Embedder
from search_api.settings import Batching

log = logging.getLogger(__name__)


class BatchingEmbedder(Embedder):
    """An Embedder sharing a loaded model, whose `embed_query` batches concurrent callers."""

    def __init__(self, loaded: Embedder, batching: Batching) -> None:
        # The same loaded model and settings: nothing is loaded again (see Embedder.__init__).
        vars(self).update(vars(loaded))
        self.max_batch, self.window = batching.max_batch, batching.window_ms / 1000
        self._waiting: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._concurrent = False  # did the last batch hold more than one query?
        self.batches = 0  # counters, read by tests and benchmarks
        self.queries = 0
        for i in range(batching.workers):  # 0: none (tests call work_once themselves)
            threading.Thread(target=self._work, name=f"query-embed-{i}", daemon=True).start()

    def embed_query(self, text: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        self._waiting.put((text, future))
        return future.result()

    def _collect(self) -> list[tuple[str, Future[np.ndarray]]]:
        """Block for one query, then take what is already waiting; wait a little longer for
        more only when recent batches show concurrent clients."""
        batch = [self._waiting.get()]
        deadline = time.monotonic() + self.window if self._concurrent else 0.0
        while len(batch) < self.max_batch:
            try:
                batch.append(self._waiting.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._waiting.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _work(self) -> None:
        while True:
            self.work_once()

    def work_once(self) -> None:
        """Wait for queries, embed what is waiting as one batch, answer each caller."""
        batch = self._collect()
        busy = self._concurrent or len(batch) > 1
        self._concurrent = len(batch) > 1
        self.batches += 1
        self.queries += len(batch)
        self._answer(batch, busy)

    def _answer(self, batch: list[tuple[str, Future[np.ndarray]]], busy: bool) -> None:
        try:
            vectors = self.embed_queries([text for text, _ in batch], busy)
        except Exception as exc:  # the worker lives on, and one query never fails another's
            if len(batch) == 1:
                log.warning("a query could not be embedded: %s", exc)
                batch[0][1].set_exception(exc)
                return
            log.warning("a batch of %d queries failed (%s); embedding them one by one",
                        len(batch), exc)
            for item in batch:
                self._answer([item], busy)
            return
        for (_, future), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)
