"""The same build on this machine and on a local Ray cluster with 1 and 2 embedding actors, in
one run: chunks/s of each, Ray's overhead per batch, and what they project for 10M chunks.

    .venv/bin/python benchmarks/cluster_build.py [--documents 300] [--batch 256] \
        [--json benchmarks/results/cluster_build.json]

1. Lays out the first `--documents` SciFact records (../shared/eval) as 20 JSONL files and
   builds them cold three times into fresh indexes: locally, then `--ray local` with one actor
   of 2 CPUs and with two actors of 1 CPU (both use the machine's 2 cores), every chunk
   embedded; then rebuilds the local index unchanged (every vector reused): with the cold
   build's chunking, the work left to the machine that runs a build, which no cluster takes.
2. Ray's overhead per batch: the same texts, 20 times over, through a one-actor Ray Data pool
   whose actor returns vectors of the right shape without a model (what is left is Ray's),
   against the same batches embedded here by the model on 2 threads. Each build reports the
   time its models computed (inside the actors, summed): the embedding stage less that is
   start-up (Ray, the actors' model loads) and waiting.
3. A projection for 10M chunks on N nodes of this machine's size and on one GPU node, from
   these figures (the GPU rate is an assumption: no GPU was measured).

Every figure is a ratio to, or printed beside, the local reference measured in the same run,
with the CPU model and the load average (other work may be running on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from benchmarks.machine import cpu  # noqa: E402
from benchmarks.scifact_corpus import SHARED  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.embed.embedder import Embedder, embedder_for  # noqa: E402
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


def row(name: str, report: BuildReport, settings: IndexerSettings) -> dict[str, object]:
    embed = report.stages.get("embed", {})
    busy, actors = float(embed.get("busy_seconds") or 0), int(embed.get("actors") or 1)
    out = {"build": name, "actors": embed.get("actors", 0),
           "cpus_per_actor": (embed.get("per_actor") or {}).get("CPU"),
           "chunks": report.chunks, "embedded": report.embedded, "reused": report.reused,
           "seconds": report.seconds, "parse_seconds": report.parse_seconds,
           "chunk_seconds": report.chunk_seconds, "embed_seconds": report.embed_seconds,
           "chunks_per_second": round(report.chunks_per_second, 1),
           "embedded_per_second": round(report.embedded_per_second, 1),
           "busy_seconds": embed.get("busy_seconds"),
           # the share of the embedding stage the models computed (start-up, Ray and the
           # writing are the rest), and the rate of the models while they computed
           "busy_share": round(busy / max(1e-9, report.embed_seconds * actors), 2),
           "model_embedded_per_second": round(report.embedded * actors / busy, 1)
           if busy else None,
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out), flush=True)
    return out


def on_ray(settings: IndexerSettings, actors: int) -> IndexerSettings:
    return settings.model_copy(update={"ray_address": "local", "ray_actors": actors,
                                       "ray_actor_cpus": 2 // actors})


class NoModel:
    """An actor that returns vectors of the model's shape without computing any: what is left of
    a batch's time is Ray's (scheduling, moving texts in and vectors out, the driver's
    iteration)."""

    def __call__(self, batch: dict[str, object]) -> dict[str, object]:
        import numpy as np

        rows = batch["row"]
        return {"row": rows, "vector": np.zeros((len(rows), 384), np.float32),  # type: ignore[arg-type]
                "busy": np.zeros(len(rows))}  # type: ignore[arg-type]


def ray_overhead(texts: list[str], step: int, rounds: int = 20) -> dict[str, object]:
    """Seconds per batch of `step` texts through a one-actor Ray Data pool that does nothing,
    over `rounds` passes of the texts, after the first batch (the pool's start)."""
    import pyarrow as pa
    import ray

    from indexer.cluster.connect import LOOPBACK_ONLY

    os.environ.setdefault(LOOPBACK_ONLY, "0")
    every = texts * rounds
    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    try:
        tables = [pa.table({"row": pa.array(range(i, min(i + step, len(every))), pa.int64()),
                            "text": pa.array(every[i:i + step], pa.large_string())})
                  for i in range(0, len(every), step)]
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        started = time.perf_counter()
        arrivals = [time.perf_counter() for _ in ray.data.from_arrow(tables).map_batches(
            NoModel, batch_size=step, batch_format="numpy", num_cpus=2,
            compute=ray.data.ActorPoolStrategy(size=1)).iter_batches(batch_size=None)]
    finally:
        ray.shutdown()
    per_batch = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
    return {"noop_batches": len(arrivals), "noop_first_batch_seconds":
            round(arrivals[0] - started, 2), "ray_overhead_seconds_per_batch": round(per_batch, 4)}


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


def projection(builds: dict[str, dict[str, object]], ceiling: float,
               overhead_per_text: float) -> dict[str, object]:
    """Hours for TARGET chunks: embedding spreads over nodes; the driver's share does not."""
    local = float(builds["local"]["embedded_per_second"])  # type: ignore[arg-type]
    model = max(float(builds[k]["model_embedded_per_second"] or 0)  # type: ignore[arg-type]
                for k in ("ray, 1 actor", "ray, 2 actors"))
    node = round(1 / (1 / model + overhead_per_text), 1)  # a node's models, plus Ray's share
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
        batches.update(ray_overhead(texts, settings.ray_batch_size))
    overhead = float(batches["ray_overhead_seconds_per_batch"])  # type: ignore[arg-type]
    batches["overhead_share_of_a_local_batch"] = round(
        overhead / float(batches["local_seconds_per_batch"]), 4)  # type: ignore[arg-type]
    print(json.dumps(batches), flush=True)
    # What stays on the driver per chunk however many nodes embed: chunking (cold build) and
    # reading, writing and publishing (the unchanged rebuild does only that).
    chunks = float(builds["local"]["chunks"])  # type: ignore[arg-type]
    ceiling = round(chunks / (float(builds["local"]["chunk_seconds"])  # type: ignore[arg-type]
                              + float(rebuild["seconds"])), 1)  # type: ignore[arg-type]
    result = {"machine": {"cpu": cpu()["cpu"], "cpus": os.cpu_count(),
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
              "documents": args.documents, "builds": [*builds.values(), rebuild],
              # the embedding stage (start-up included), and the models while they computed
              "ratios_to_local": {k: round(float(v["embedded_per_second"])  # type: ignore[arg-type]
                                           / float(builds["local"]["embedded_per_second"]), 2)
                                  for k, v in builds.items()},
              "model_ratios_to_local": {
                  k: round(float(v["model_embedded_per_second"] or 0)  # type: ignore[arg-type]
                           / float(builds["local"]["model_embedded_per_second"]), 2)
                  for k, v in builds.items()},
              "batches": batches, "projection": projection(
                  builds, ceiling, overhead / settings.ray_batch_size)}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios_to_local"]), json.dumps(result["projection"], indent=1))
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
