"""Who does a build's heavy work: what a back-end offers the build (Workers), and this machine's
(the isolated parser process and the build's own model). The Ray back-end (indexer/cluster/)
offers the same; the build chooses between them where it is assembled (indexer/build.py).

The build asks both the same two questions, "parse these files" and "embed these blocks of
texts", so the pipeline reads the same whichever answers; discovering, chunking, writing and
publishing stay with the build, on the machine that runs the command, under the index's lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from indexer.embed.embedder import Embedder
from indexer.intake import FileParsing, LocalParsing
from indexer.load.isolate import IsolatedParser
from indexer.settings import IndexerSettings


class WorkersUnavailable(Exception):
    """The workers could not be reached or started, or were lost for good: nothing was
    published (exit 1)."""


class BlockEmbedding(Protocol):
    """Texts to vectors, block by block in the order asked; `done(n)` as n texts finish.
    `busy_seconds`: the time spent in the model so far (summed over a cluster's actors)."""

    backend: str
    busy_seconds: float

    def fingerprint(self) -> str: ...

    def embed_blocks(self, blocks: Sequence[Sequence[str]],
                     done: Callable[[int], None]) -> Iterator[np.ndarray]: ...


@dataclass(frozen=True)
class Stage:
    """Where one stage runs, for the progress bar, the log and the report."""

    on: str  # "local", or "ray" (a cluster)
    workers: int  # processes on this machine, or actors on the cluster
    unit: str = "process"
    resources: dict[str, float] = field(default_factory=dict)  # what each worker reserves

    @property
    def units(self) -> str:
        return "processes" if self.unit == "process" else f"{self.unit}s"

    def label(self, what: str) -> str:
        """"embedding", or "embedding on ray (2 actors)"."""
        if self.on == "local":
            return what
        unit = self.unit if self.workers == 1 else self.units
        return f"{what} on {self.on} ({self.workers} {unit})"

    def as_dict(self) -> dict[str, object]:
        return {"on": self.on, self.units: self.workers, f"per_{self.unit}": self.resources}


@dataclass
class Workers:
    parsing: FileParsing
    parse: Stage
    embed: Stage
    # The build's own model (its tokenizer chunks the texts) -> what embeds them.
    embedding: Callable[[Embedder], BlockEmbedding]
    cluster: dict[str, object] = field(default_factory=dict)  # address, nodes, CPUs, GPUs
    # A cluster's: per stage ("parse", "embed"), the files or texts each node did.
    nodes: dict[str, Counter[str]] = field(default_factory=dict)


@contextmanager
def local_workers(settings: IndexerSettings) -> Iterator[Workers]:
    """This machine's workers: one isolated parser process, and the build's own model."""
    with IsolatedParser(settings.parse_timeout_seconds) as parser:
        yield Workers(LocalParsing(parser), Stage("local", 1),
                      Stage("local", 1, resources={"CPU": float(settings.torch_threads)}),
                      lambda embedder: embedder)
