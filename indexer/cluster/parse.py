"""Parsing and OCR on the cluster: each file that needs parsing is one task on a pool of parse
actors, in the order the build asks, with a local build's guarantees.

Each actor holds the very worker a local build uses (isolate.IsolatedParser): the same per-file
time limit, and a parser that loops or crashes costs that one file, with the same reasons. The
machine running the build reads each file once (intake.snapshot: the sha256 of exactly the bytes
sent) and sends the bytes, so workers need no shared file system. A worker killed mid-file is
restarted by Ray and its file sent again (RETRIES times), and the build goes on. Each answer
names the node that parsed it, for the build's report.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import ray
from ray.util import ActorPool

from indexer.cluster.join import this_node
from indexer.intake import Parsed, ParseJob, Snapshot, parsed, snapshot
from indexer.load.isolate import IsolatedParser
from indexer.load.loader import LoadOptions, LoadResult
from indexer.store.records import FileRecord
from indexer.workers import Stage, WorkersUnavailable

RETRIES = 3  # a killed worker's file is sent again this often before the build gives up


@ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)
class ParseActor:
    """One parse worker: an isolated parser process, fed with file bytes."""

    def __init__(self, timeout: float) -> None:
        self._parser = IsolatedParser(timeout)
        self._dir = Path(tempfile.mkdtemp(prefix="pks-parse-"))
        self._node = this_node()

    def parse(self, index: int, data: bytes, rel: str,
              options: LoadOptions) -> tuple[int, list[LoadResult], str]:
        path = self._dir / PurePosixPath(rel).name  # the loaders take titles from file names
        path.write_bytes(data)
        try:
            return index, self._parser.parse(path, rel, options), self._node
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self._parser.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ClusterParsing:
    """intake.FileParsing on the cluster: results in job order, `done` as each file ends;
    `nodes` counts the files each node parsed."""

    def __init__(self, stage: Stage, timeout: float, nodes: Counter[str]) -> None:
        self._stage = stage
        self._timeout = timeout
        self.nodes = nodes

    def parse_files(self, jobs: Sequence[ParseJob],
                    done: Callable[[], None]) -> Iterator[Parsed]:
        if not jobs:
            return
        actors = [ParseActor.remote(self._timeout)  # type: ignore[attr-defined]
                  for _ in range(min(self._stage.workers, len(jobs)))]
        records: dict[int, FileRecord] = {}
        answered: dict[int, Parsed] = {}  # files the driver answered itself (gone, refused)

        def send(actor: ray.actor.ActorHandle, i: int) -> ray.ObjectRef:
            got = snapshot(jobs[i])  # read only when a worker is free: bytes in flight only
            if isinstance(got, Snapshot):
                records[i] = got.record
                return actor.parse.remote(i, got.data, jobs[i].rel, jobs[i].options)
            answered[i] = got
            return ray.put((i, None, None))

        pool = ActorPool(actors)
        for i in range(len(jobs)):
            pool.submit(send, i)
        ready: dict[int, Parsed] = {}
        following = 0
        try:
            while pool.has_next():
                i, results, node = pool.get_next_unordered()
                ready[i] = answered.pop(i) if results is None else \
                    parsed(records.pop(i), results)
                if node is not None:
                    self.nodes[node] += 1
                done()
                while following in ready:
                    yield ready.pop(following)
                    following += 1
        except ray.exceptions.RayError as exc:
            raise WorkersUnavailable(f"parsing on the cluster failed: {_first_line(exc)}") \
                from exc
        finally:
            _close(actors)


def _close(actors: list[ray.actor.ActorHandle]) -> None:
    """Stop the parser processes, then free the actors' CPUs for the embedding stage."""
    try:
        ray.get([a.close.remote() for a in actors], timeout=30)
    except ray.exceptions.RayError:
        pass  # a lost actor has nothing left to close
    for actor in actors:
        ray.kill(actor)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
