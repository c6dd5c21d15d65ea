"""Embedding on the cluster: the texts the live generation has no vector for become one Ray
Data dataset, and `map_batches` runs it through a pool of actors that each load the model once
(Ray Data's documented way to run a model over a dataset).

Each actor builds its model as a local build does (embed.embedder_for: the same backend and
precision rules) on the device it was given: a GPU where the cluster has one, else its CPUs.
The build records the fingerprint a probe on the cluster computes, and an actor whose own
fingerprint differs (a node with another CPU, so another precision) refuses to embed: stored
vectors always say honestly how they were made. Ray Data restarts a killed actor and sends its
batch again; the vectors come back in order, block by block, as the build writes them, each
batch naming the node that embedded it (for the build's report).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data

from indexer.cluster.join import this_node
from indexer.embed.embedder import Embedder, ModelLoadError, embedder_for
from indexer.settings import IndexerSettings
from indexer.workers import Stage, WorkersUnavailable

RETRIES = 3  # the probe's worker may die this often


def _load(settings: IndexerSettings) -> Embedder:
    """The model as a local build loads it, on the GPU Ray gave this worker if it gave one."""
    return embedder_for(settings, "cuda" if ray.get_gpu_ids() else "cpu")


@ray.remote(max_retries=RETRIES)
def _probe(settings: IndexerSettings) -> tuple[str, str, int]:
    """(backend, fingerprint, dimension) of the model as an actor will load it."""
    embedder = _load(settings)
    return embedder.backend, embedder.fingerprint(), embedder.dim


class EmbedActor:
    """One model, loaded once per actor; a batch of texts in, their vectors out."""

    def __init__(self, settings: IndexerSettings, expected: str) -> None:
        self._embedder = _load(settings)
        self._node = this_node()
        got = self._embedder.fingerprint()
        if got != expected:
            raise RuntimeError(
                f"this node computes vectors as {got}, the build records {expected}: nodes "
                "differ in backend or precision; set PKS_EMBED_BACKEND and "
                "PKS_EMBED_PRECISION (e.g. f32) so every node computes the same vectors")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(text) for text in batch["text"]]
        started = time.perf_counter()
        vectors = self._embedder.embed(texts)
        busy = (time.perf_counter() - started) / max(1, len(texts))  # per row: a column
        return {"row": batch["row"], "vector": vectors, "busy": np.full(len(texts), busy),
                "node": np.full(len(texts), self._node, dtype=object)}


def actor_settings(settings: IndexerSettings, stage: Stage) -> IndexerSettings:
    """The build's settings as an actor applies them: its threads are the CPUs it reserves."""
    threads = 1 if "GPU" in stage.resources else int(stage.resources.get("CPU", 1))
    return settings.model_copy(update={"torch_threads": threads})


def start_probe(settings: IndexerSettings, stage: Stage) -> ray.ObjectRef:
    """Load the model on the cluster as an actor will, while the build loads its own."""
    return _probe.options(**_resources(stage)).remote(
        actor_settings(settings, stage))


class ClusterEmbedding:
    """workers.BlockEmbedding on the cluster, from the probe `start_probe` began: a cluster
    that cannot load the model fails here, before any file is parsed. `nodes` counts the
    texts each node embedded."""

    def __init__(self, settings: IndexerSettings, stage: Stage, probe: ray.ObjectRef,
                 dim: int, nodes: Counter[str]) -> None:
        self.nodes = nodes
        self._settings = actor_settings(settings, stage)
        self._stage = stage
        self._dim = dim
        try:
            backend, self._fingerprint, got = ray.get(probe)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, ModelLoadError):  # a configuration problem (exit 2)
                raise ModelLoadError(f"on the cluster: {exc.cause}") from None
            raise WorkersUnavailable(f"the cluster cannot load the model: {exc.cause}") from exc
        if got != dim:
            raise WorkersUnavailable(f"the cluster's model makes {got}-dimensional vectors, "
                                     f"this machine's {dim}: they load different models")
        self.backend = backend
        self.busy_seconds = 0.0

    def fingerprint(self) -> str:
        return self._fingerprint

    def embed_blocks(self, blocks: Sequence[Sequence[str]],
                     done: Callable[[int], None]) -> Iterator[np.ndarray]:
        sizes = [len(b) for b in blocks]
        texts = [t for b in blocks for t in b]
        if not texts:
            for _ in blocks:
                yield np.zeros((0, self._dim), dtype=np.float32)
            return

        def arrived(batch: dict[str, np.ndarray]) -> None:
            self.busy_seconds += float(np.sum(batch["busy"]))
            self.nodes.update(str(node) for node in batch["node"])
            done(len(batch["row"]))

        try:
            batches = self._dataset(texts).iter_batches(batch_size=None, batch_format="numpy")
            yield from in_blocks(batches, sizes, self._dim, arrived)
        except ray.exceptions.RayError as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise WorkersUnavailable("embedding on the cluster failed: "
                                     f"{lines[-1] if lines else type(exc).__name__}") from exc

    def _dataset(self, texts: list[str]) -> ray.data.Dataset:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # blocks are written in order
        context.enable_progress_bars = False  # the build's own bar and log lines say it
        context.print_on_execution_start = False
        _quiet_ray_data()
        step = self._settings.ray_batch_size
        tables = [pa.table({"row": pa.array(range(first, min(first + step, len(texts))),
                                            pa.int64()),
                            "text": pa.array(texts[first:first + step], pa.large_string())})
                  for first in range(0, len(texts), step)]
        # Ray Data restarts a dead actor and sends its batch again (its defaults).
        return ray.data.from_arrow(tables).map_batches(
            EmbedActor, batch_size=step, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self._stage.workers),
            fn_constructor_kwargs={"settings": self._settings, "expected": self._fingerprint},
            **_resources(self._stage))


def _resources(stage: Stage) -> dict[str, Any]:
    return {"num_cpus": stage.resources.get("CPU", 1), "num_gpus": stage.resources.get("GPU", 0)}


def _quiet_ray_data() -> None:
    """Ray Data's warnings reach the build's log; its chatter stays in its session log file."""
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars disabled"
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)


def in_blocks(batches: Iterable[dict[str, np.ndarray]], sizes: list[int], dim: int,
              arrived: Callable[[dict[str, np.ndarray]], None]) -> Iterator[np.ndarray]:
    """(row, vector) batches, in any order, regrouped into blocks of `sizes` rows, in order; a
    block is handed over once every one of its rows has arrived."""
    offsets = np.cumsum([0, *sizes])
    vectors: dict[int, np.ndarray] = {}
    have: dict[int, np.ndarray] = {}
    following = 0
    for batch in batches:
        rows = np.asarray(batch["row"], dtype=np.int64)
        owners = np.searchsorted(offsets, rows, side="right") - 1
        for block in np.unique(owners).tolist():
            mine = owners == block
            at = rows[mine] - offsets[block]
            vectors.setdefault(block, np.zeros((sizes[block], dim), np.float32))[at] = \
                np.asarray(batch["vector"])[mine]
            have.setdefault(block, np.zeros(sizes[block], bool))[at] = True
        arrived(batch)
        while following < len(sizes) and _arrived(have, sizes, following):
            have.pop(following, None)
            yield vectors.pop(following, np.zeros((0, dim), np.float32))
            following += 1
    while following < len(sizes) and sizes[following] == 0:  # blocks with nothing to embed
        yield np.zeros((0, dim), np.float32)
        following += 1
    if following < len(sizes):
        raise WorkersUnavailable(f"the cluster returned the vectors of {following} of "
                                 f"{len(sizes)} blocks")


def _arrived(have: dict[int, np.ndarray], sizes: list[int], block: int) -> bool:
    return sizes[block] == 0 or (block in have and bool(have[block].all()))
