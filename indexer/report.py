"""What a build did, for the operator: printed as a summary, written as JSON (`--report FILE`,
and `report.json` inside the generation)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexer.load.loader import LoadWarning, Skipped


@dataclass
class BuildReport:
    corpus: str
    index: str
    generation: str = ""
    started_at: str = ""
    finished_at: str = ""
    documents: int = 0  # documents in the new generation
    chunks: int = 0
    embedded: int = 0  # chunk texts embedded by this build
    reused: int = 0  # chunks whose vector came from the previous generation
    added: int = 0  # documents, compared with the previous generation by document id
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    files_parsed: int = 0
    files_carried: int = 0  # unchanged files: not read, their chunks and vectors carried over
    skipped: list[Skipped] = field(default_factory=list)
    kept_previous: list[Skipped] = field(default_factory=list)  # failed now, last good version
    warnings: list[LoadWarning] = field(default_factory=list)
    seconds: float = 0.0
    parse_seconds: float = 0.0  # reading files (parsing those that changed)
    chunk_seconds: float = 0.0  # chunking: always on the machine that runs the build
    embed_seconds: float = 0.0
    # Where each stage ran ("parse", "embed": on "local" or "ray", how many processes or
    # actors, what each reserves; on a cluster, "nodes": the files parsed or texts embedded per
    # node; embed: the backend, and busy_seconds, the time spent in the model, summed over
    # actors) and the cluster (address, nodes, CPUs, GPUs) if there was one.
    stages: dict[str, dict[str, object]] = field(default_factory=dict)
    cluster: dict[str, object] = field(default_factory=dict)
    shards: int = 1  # the generation was written as this many shards (--shards)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0

    @property
    def embedded_per_second(self) -> float:
        """The embedding rate: texts embedded by this build per second of its embedding stage
        (a cluster's actor start-up included)."""
        return self.embedded / self.embed_seconds if self.embed_seconds else 0.0

    @property
    def complete(self) -> bool:
        """Nothing skipped and nothing kept from a previous version (exit code 0, not 3)."""
        return not self.skipped and not self.kept_previous

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "chunks_per_second": round(self.chunks_per_second, 2),
                "embedded_per_second": round(self.embedded_per_second, 2)}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n",
                        encoding="utf-8")

    def summary_lines(self) -> list[str]:
        lines = [f"Published generation {self.generation} of {self.index} from {self.corpus}",
                 f"  documents indexed: {self.documents} (added {self.added}, changed "
                 f"{self.changed}, unchanged {self.unchanged}, deleted {self.deleted})",
                 f"  files: {self.files_parsed} parsed, {self.files_carried} unchanged and "
                 "carried over",
                 f"  skipped: {len(self.skipped)}"]
        lines += [f"    - {s.path}: {s.reason}" for s in self.skipped]
        lines.append(f"  kept previous version: {len(self.kept_previous)}")
        lines += [f"    - {k.path}: kept previous version: {k.reason}"
                  for k in self.kept_previous]
        if self.warnings:
            lines.append(f"  warnings: {len(self.warnings)}")
            lines += [f"    - {w.path}: {w.message}" for w in self.warnings]
        lines += [f"  chunks: {self.chunks} ({self.embedded} embedded, {self.reused} reused "
                  "from the previous generation)",
                  f"  seconds: {self.seconds:.1f} (reading {self.parse_seconds:.1f}, chunking "
                  f"{self.chunk_seconds:.1f}, embedding {self.embed_seconds:.1f}); "
                  f"{self.chunks_per_second:.1f} chunks/s, "
                  f"{self.embedded_per_second:.1f} texts embedded/s"]
        if self.shards > 1:
            lines.append(f"  shards: {self.shards} (by document; `serve --ray` serves each)")
        if self.cluster:
            lines.append(f"  on the Ray cluster at {self.cluster.get('address')} "
                         f"({self.cluster.get('nodes')} node(s), {self.cluster.get('cpus'):g} "
                         "CPUs): " + "; ".join(_where(name, stage)
                                               for name, stage in self.stages.items()))
        return lines


def _where(name: str, stage: dict[str, object]) -> str:
    """"parse 2 actor(s) on 127.0.0.1 (0f3c9a1e) 5 files, ..." for the summary."""
    unit = "files" if name == "parse" else "texts"
    nodes = stage.get("nodes") or {}
    done = ", ".join(f"{node} {count} {unit}" for node, count in nodes.items())  # type: ignore
    return f"{name} {stage.get('actors')} actor(s)" + (f" on {done}" if done else "")
