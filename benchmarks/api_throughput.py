"""Throughput and latency of the real HTTP server under concurrent clients, on loopback.

    .venv/bin/python benchmarks/api_throughput.py --index var/bench/scifact100-index \
        [--clients 1 8] [--requests 800] [--embed-workers 1] [--window-ms 0] [--threads 2] \
        [--busy-threads 1]

The index is SciFact split among 100 partners (`--build` makes it from ../shared/eval/scifact
with benchmarks/scifact_corpus.make_partner_corpus if it is missing). For each server setting
(embedding workers, batch window, torch threads per worker: PKS_EMBED_WORKERS,
PKS_BATCH_WINDOW_MS, PKS_TORCH_THREADS; one FAISS thread), starts `python -m search_api serve`
on a free loopback port, and for each client count sends SciFact test queries over keep-alive
connections, each request with the key of one of the 100 partners in turn, and counts every
non-200 answer as an error. The clients run on the same 2 cores as the server. Prints JSON rows
and writes benchmarks/results/api_throughput.json.

Beside the server, in the same run and before it starts, the bare query embedding is measured
in this process with the server's model, backend, precision and threads: one query alone (p50)
and batches of 8 (per query), whose inverse is the ceiling of queries/s on this CPU. The goals
are ratios to those (docs/PERFORMANCE.md): 8-client queries/s >= 0.7 x the batched ceiling, and
1-client p50 <= 1.5 x one bare query embedding + 2 ms. The CPU model and flags are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, api_keys, drive, searches, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from benchmarks.scifact_corpus import SHARED, load_queries, make_partner_corpus  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402


class BareEmbedding:
    """The query embedding alone, as the server runs it (its model, PKS_EMBED_BACKEND and
    PRECISION, the same threads), measured in this process: wall clock and CPU time."""

    def __init__(self, index: Path, threads: int, queries: list[str]) -> None:
        from indexer.embed.embedder import Embedder
        from search_api.settings import ApiSettings

        settings = ApiSettings(index=index)
        self.embedder = Embedder(Generation.open_live(index).info["model"], batch_size=1,
                                 threads=threads, backend=settings.embed_backend,
                                 precision=settings.embed_precision)
        self.threads, self.queries = threads, queries
        for query in queries[:20]:
            self.embedder.embed_queries([query])  # warm-up

    def _time(self, texts: list[str]) -> tuple[float, float]:
        """(wall ms, CPU ms of all this process's threads) of one forward pass."""
        wall, cpu_time = time.perf_counter(), time.process_time()
        self.embedder.embed_queries(texts)
        return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu_time) * 1000

    def measure(self) -> dict[str, float]:
        q = self.queries
        single = [self._time([q[i % len(q)]]) for i in range(200)]
        batched = [self._time([q[(i + j) % len(q)] for j in range(8)]) for i in range(0, 400, 8)]
        return {"single_ms_p50": statistics.median(w for w, _ in single),
                "single_cpu_ms": statistics.mean(c for _, c in single),
                "batch8_ms_per_query": statistics.median(w for w, _ in batched) / 8,
                "batch8_cpu_ms_per_query": statistics.mean(c for _, c in batched) / 8}


def side_by_side(before: dict[str, float], after: dict[str, float],
                 backend: str, threads: int) -> dict[str, object]:
    """The bare embedding measured just before and just after the server: their mean."""
    mean = {k: round((before[k] + after[k]) / 2, 2) for k in before}
    return {"backend": backend, "threads": threads, **mean,
            "before": {k: round(v, 2) for k, v in before.items()},
            "after": {k: round(v, 2) for k, v in after.items()},
            "ceiling_qps": round(1000 / mean["batch8_ms_per_query"], 1)}


def goals(rows: list[dict[str, object]], bare: dict[str, object]) -> dict[str, object]:
    """The two ratios of docs/PERFORMANCE.md for one server configuration, on the wall clock,
    and beside them their CPU-time forms, which a busy machine distorts far less: the share of
    the embedding ceiling the server's CPU per query allows (server and clients share the
    cores), and the server's CPU per 1-client query over one bare query's."""
    by_clients = {row["clients"]: row for row in rows}
    out: dict[str, object] = {}
    number = float  # the JSON rows hold numbers as objects
    if 8 in by_clients:
        row = by_clients[8]
        ratio = number(row["qps"]) / number(bare["ceiling_qps"])  # type: ignore[arg-type]
        out["qps8_over_ceiling"] = round(ratio, 3)
        out["qps8_goal_met"] = ratio >= 0.7
        spent = number(row["server_cpu_ms_per_query"]) + \
            number(row["client_cpu_ms_per_query"])  # type: ignore[arg-type]
        out["cpu_ceiling_share_8"] = round(
            number(bare["batch8_cpu_ms_per_query"]) / spent, 3)  # type: ignore[arg-type]
    if 1 in by_clients:
        row = by_clients[1]
        budget = 1.5 * number(bare["single_ms_p50"]) + 2  # type: ignore[arg-type]
        ratio = number(row["latency_ms_p50"]) / budget  # type: ignore[arg-type]
        out["p50_1_budget_ms"] = round(budget, 2)
        out["p50_1_over_budget"] = round(ratio, 3)
        out["p50_1_goal_met"] = ratio <= 1.0
        out["cpu_1_over_bare_single"] = round(
            number(row["server_cpu_ms_per_query"])  # type: ignore[arg-type]
            / number(bare["single_cpu_ms"]), 3)  # type: ignore[arg-type]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=ROOT / "var/bench/scifact100-index")
    parser.add_argument("--build", action="store_true", help="build the index if it is missing")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="server processes (serve --workers N, PKS_WORKERS)")
    parser.add_argument("--embed-workers", type=int, nargs="+", default=[1])
    parser.add_argument("--window-ms", type=float, nargs="+", default=[0.0])
    parser.add_argument("--max-batch", type=int, nargs="+", default=[32],
                        help="1 with as many workers as clients: no batching, for comparison")
    parser.add_argument("--threads", type=int, nargs="+", default=[2],
                        help="threads per embedding worker's forward pass (PKS_TORCH_THREADS)")
    parser.add_argument("--busy-threads", type=int, nargs="+", default=[1],
                        help="threads of a pass while queries are concurrent (PKS_BUSY_THREADS; "
                             "as many as --threads: the passes before issue 25)")
    parser.add_argument("--data", type=Path, default=SHARED, help="BEIR SciFact directory")
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "api_throughput.json")
    args = parser.parse_args()
    if args.build and not (args.index / "CURRENT").exists():
        corpus = make_partner_corpus(args.index.with_name(args.index.name + "-corpus"),
                                     source=args.data / "corpus.jsonl")
        subprocess.run([sys.executable, "-m", "indexer", "build", "--corpus", str(corpus),
                        "--index", str(args.index), "--no-progress"], cwd=ROOT, check=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    queries = list(load_queries("test", args.data)[0].values())
    partners = Generation.open_live(args.index).partners
    machine = cpu()
    print(json.dumps(machine), flush=True)
    rows: list[dict[str, object]] = []
    with api_keys(args.index, partners) as keys:
        for processes, workers, window, threads, batch, busy in itertools.product(
                args.workers, args.embed_workers, args.window_ms, args.threads, args.max_batch,
                args.busy_threads):
            env = {"PKS_WORKERS": str(processes), "PKS_BUSY_THREADS": str(busy),
                   "PKS_EMBED_WORKERS": str(workers), "PKS_BATCH_WINDOW_MS": str(window),
                   "PKS_TORCH_THREADS": str(threads), "PKS_FAISS_THREADS": "1",
                   "PKS_QUERY_BATCH": str(batch)}
            bare_embedding = BareEmbedding(args.index, threads, queries)
            before = bare_embedding.measure()
            measured = []
            with serving(args.index, env, workers=processes) as server:
                for clients in args.clients:
                    row = {"processes": processes, "embed_workers": workers, "window_ms": window,
                           "max_batch": batch, "busy_threads": busy,
                           "torch_threads": threads, "partners": len(partners),
                           **drive(server, clients, args.requests,
                                   searches(queries, keys.partner_tokens)),
                           "load_average": round(os.getloadavg()[0], 2)}
                    print(json.dumps(row), flush=True)
                    measured.append(row)
            bare = side_by_side(before, bare_embedding.measure(),
                                bare_embedding.embedder.backend, threads)
            del bare_embedding
            print(json.dumps({"bare_embedding": bare}), flush=True)
            rows.extend(measured)
            reached = {"processes": processes, "embed_workers": workers, "torch_threads": threads,
                       "busy_threads": busy,
                       "bare_embedding": bare, **goals(measured, bare)}
            print(json.dumps({"goals": reached}), flush=True)
            rows.append({"goals": reached})
    write_results(args.json, machine, rows)

if __name__ == "__main__":
    main()
