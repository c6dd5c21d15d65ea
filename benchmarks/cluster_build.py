"""The same build on this machine and on a local Ray cluster with 1 and 2 embedding actors, in
one run: chunks/s of each, Ray's overhead per batch, and what they project for 10M chunks.

    .venv/bin/python benchmarks/cluster_build.py [--documents 300] [--batch 256] \
        [--json benchmarks/results/cluster_build.json]

1. Lays out the first `--documents` SciFact records (../shared/eval) as 20 JSONL files and
   builds them cold three times into fresh indexes: locally, then `--ray local` with one actor
   of 2 CPUs and with two actors of 1 CPU (both use the machine's 2 cores), every chunk
   embedded; then rebuilds the local index unchanged (every vector reused): with the cold
   build's chunking, the work left to the machine that runs a build, which no cluster takes.
2. Ray's overhead per batch: on Ray the build's embedding bar moves once per batch; the time
   between the first and the last batch gives the steady rate (start-up, Ray's and the actors'
   model loads, is reported apart), against the same batches embedded here by the same model
   on 2 threads. (The bar is timed by a subclass of indexer.progress.Progress set on the build
   module: it only records when the bar moves.)
3. A projection for 10M chunks on N nodes of this machine's size and on one GPU node, from
   these figures (the GPU rate is an assumption: no GPU was measured).

Every figure is a ratio to, or printed beside, the local reference measured in the same run,
with the CPU model and the load average (other work may be running on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import indexer.build  # noqa: E402
from benchmarks.scifact_corpus import SHARED  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.embed import Embedder, embedder_for  # noqa: E402
from indexer.report import BuildReport  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 10_000_000  # chunks in the projection


def make_corpus(dest: Path, records: list[str], files: int = 20) -> Path:
    """The records as `files` JSONL files, one partner allowed everything."""
    dest.mkdir(parents=True)
    (dest / "access.yaml").write_text('partners: [p]\nrules:\n  - match: "**"\n    allow: [p]\n')
    for i in range(files):
        (dest / f"part-{i:02d}.jsonl").write_text("".join(
            line + "\n" for n, line in enumerate(records) if n % files == i))
    return dest


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines()
                 if line.startswith("Model name")), "unknown")


class Arrivals:
    """When the embedding bar of a build moved, and by how much: on Ray, once per batch."""

    seen: list[tuple[float, int]] = []

    @classmethod
    def steady(cls, texts_per_batch: int) -> dict[str, object]:
        """After the first batch (start-up: Ray, the actors' models): texts/s and s/batch."""
        times = [t for t, n in cls.seen if n]
        texts = sum(n for _, n in cls.seen[1:])
        if len(times) < 2 or times[-1] == times[0]:
            return {}
        rate = texts / (times[-1] - times[0])
        return {"steady_embedded_per_second": round(rate, 1),
                "steady_seconds_per_batch": round(texts_per_batch / rate, 3)}


class TimedProgress(indexer.build.Progress):
    def __init__(self, total: int, what: str, unit: str, bar: bool) -> None:
        super().__init__(total, what, unit, bar)
        self._timed = what.startswith("embedding")
        if self._timed:
            Arrivals.seen = []

    def update(self, n: int = 1) -> None:
        if self._timed:
            Arrivals.seen.append((time.perf_counter(), n))
        super().update(n)


def row(name: str, report: BuildReport, settings: IndexerSettings) -> dict[str, object]:
    embed = report.stages.get("embed", {})
    out = {"build": name, "actors": embed.get("actors", 0),
           "cpus_per_actor": (embed.get("per_actor") or {}).get("CPU"),
           "chunks": report.chunks, "embedded": report.embedded, "reused": report.reused,
           "seconds": report.seconds, "parse_seconds": report.parse_seconds,
           "chunk_seconds": report.chunk_seconds, "embed_seconds": report.embed_seconds,
           "chunks_per_second": round(report.chunks_per_second, 1),
           "embedded_per_second": round(report.embedded_per_second, 1),
           "busy_seconds": embed.get("busy_seconds"),
           "batches": -(-report.embedded // settings.ray_batch_size),
           **(Arrivals.steady(settings.ray_batch_size) if embed.get("on") == "ray" else {}),
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out), flush=True)
    return out


def on_ray(settings: IndexerSettings, actors: int) -> IndexerSettings:
    return settings.model_copy(update={"ray_address": "local", "ray_actors": actors,
                                       "ray_actor_cpus": 2 // actors})


def local_batches(settings: IndexerSettings, embedder: Embedder,
                  texts: list[str]) -> dict[str, object]:
    """The reference: the same batches embedded here, by the same model on 2 threads."""
    step = settings.ray_batch_size
    started = time.perf_counter()
    batches = 0
    for first in range(0, len(texts), step):
        embedder.embed(texts[first:first + step])
        batches += 1
    seconds = time.perf_counter() - started
    return {"texts_per_batch": step, "batches": batches,
            "local_seconds_per_batch": round(seconds / batches, 3),
            "local_embedded_per_second": round(len(texts) / seconds, 1)}


def projection(builds: dict[str, dict[str, object]], ceiling: float) -> dict[str, object]:
    """Hours for TARGET chunks: embedding spreads over nodes; the driver's share does not."""
    local = float(builds["local"]["embedded_per_second"])  # type: ignore[arg-type]
    node = max(float(builds[k].get("steady_embedded_per_second", 0))  # type: ignore[arg-type]
               for k in ("ray, 1 actor", "ray, 2 actors"))
    out: dict[str, object] = {
        "chunks": TARGET, "local_chunks_per_second": local,
        "ray_node_chunks_per_second": node, "driver_ceiling_chunks_per_second": ceiling,
        "one_machine_hours": round(TARGET / local / 3600, 1)}
    for n in (1, 4, 16, 64):
        rate = min(n * node, ceiling)
        out[f"{n}_nodes_hours"] = round(TARGET / rate / 3600, 1)
    # Not measured: no GPU was lent to this task. all-MiniLM-L6-v2 (6 layers, 384 wide) is
    # commonly run at a few thousand 256-token texts/s on one datacenter GPU; bounded here by
    # the driver's measured ceiling either way.
    for gpu_rate in (2000.0, 10000.0):
        out[f"one_gpu_node_hours_at_{int(gpu_rate)}_per_second_assumed"] = round(
            TARGET / min(gpu_rate, ceiling) / 3600, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--batch", type=int, default=128, help="texts per Ray Data batch")
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "cluster_build.json")
    args = parser.parse_args()
    settings = IndexerSettings(progress=False, ray_batch_size=args.batch)
    indexer.build.Progress = TimedProgress  # type: ignore[misc]  # the batches' arrival times
    embedder = embedder_for(settings)
    builds: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        lines = (SHARED / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        corpus = make_corpus(root / "corpus", lines[:args.documents])
        builds["local"] = row("local", build(corpus, root / "local", settings, embedder),
                              settings)
        rebuild = row("local, unchanged rebuild",
                      build(corpus, root / "local", settings, embedder), settings)
        for actors in (1, 2):
            name = f"ray, {actors} actor{'s' * (actors > 1)}"
            builds[name] = row(name, build(corpus, root / f"ray-{actors}",
                                           on_ray(settings, actors), embedder), settings)
        gen = Generation.open_live(root / "local")
        texts = sorted({p.text for p in gen.passages(gen.all_chunk_ids().tolist()).values()})
        batches = local_batches(settings, embedder, texts)
    # Ray's overhead per batch: one actor's wall time per batch, once started, less the time
    # its model spent on the batch (measured inside the actor, in the same build).
    one = builds["ray, 1 actor"]
    if "steady_seconds_per_batch" in one:
        busy = float(one["busy_seconds"]) / float(one["batches"])  # type: ignore[arg-type]
        wall = float(one["steady_seconds_per_batch"])  # type: ignore[arg-type]
        batches.update({"ray_seconds_per_batch": round(wall, 3),
                        "actor_busy_seconds_per_batch": round(busy, 3),
                        "overhead_seconds_per_batch": round(wall - busy, 3),
                        "overhead_share": round((wall - busy) / wall, 3),
                        "actor_vs_local_per_batch": round(
                            busy / float(batches["local_seconds_per_batch"]), 2)})
    print(json.dumps(batches), flush=True)
    # What stays on the driver per chunk however many nodes embed: chunking (cold build) and
    # reading, writing and publishing (the unchanged rebuild does only that).
    chunks = float(builds["local"]["chunks"])  # type: ignore[arg-type]
    ceiling = round(chunks / (float(builds["local"]["chunk_seconds"])  # type: ignore[arg-type]
                              + float(rebuild["seconds"])), 1)  # type: ignore[arg-type]
    result = {"machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
              "documents": args.documents, "builds": [*builds.values(), rebuild],
              "ratios_to_local": {k: round(float(v["embedded_per_second"])  # type: ignore[arg-type]
                                           / float(builds["local"]["embedded_per_second"]), 2)
                                  for k, v in builds.items()},
              "batches": batches, "projection": projection(builds, ceiling)}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios_to_local"]), json.dumps(result["projection"], indent=1))
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
