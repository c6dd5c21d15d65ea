"""The one path whose work can still depend on hidden documents: the approximate (IVF) dense
search of a broad allowed set on a large index. Measured with timing_channel.py's statistic.

    .venv/bin/python benchmarks/ann_channel.py [--n 600000] [--pairs 400] [--json OUT]

A store of `n` synthetic 384-d vectors (as filtered_search.py writes them: through the store's
own writer, with its IVF index) of which the prober may see half (a contiguous run of rows: its
groups), so its exact plans cost more than the planner's budget and it is searched through the
IVF index with its rows as the selector. The prober's documents cluster around 200 centres, the
hidden ones around 8 (a hidden topic spans dozens of the IVF's lists, as a partner's own field
of work would). A query made of words that occur only in hidden
documents embeds among the hidden ones: here a vector near a hidden centre. A query of words
that occur nowhere embeds anywhere: a vector near no centre. Each pair times one of each, in
random order, in this process (the query thread's CPU time, and the wall clock), and says which
plan ran; z as timing_channel.py computes it (> 0: the hidden-topic queries cost more). Twice,
over the same rows: read through whole lists with a bitmap selector (as before issue 22: a
hidden-topic query reads lists full of hidden entries and widens), and read by access group
(ann.py: only the prober's range of each list, lists chosen by its own entries).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.filtered_search import DIM, clustered  # noqa: E402
from benchmarks.harness import ROOT, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from benchmarks.timing_channel import mann_whitney_z  # noqa: E402
from indexer.store.vector_file import ANN_MIN_ROWS, VectorFile  # noqa: E402
from indexer.store.vectors import VectorStore  # noqa: E402

MINE = 200  # topics of the prober's documents
HIDDEN = 8  # topics of the hidden documents: few and broad, each spanning dozens of IVF lists


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600_000)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "ann_channel.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((MINE + HIDDEN, DIM)).astype(np.float32)
    mine, hidden = centres[:MINE], centres[MINE:]
    half = args.n // 2
    ids = rng.choice(2**53, args.n, replace=False).astype(np.int64)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as scratch:
        spill = VectorFile(Path(scratch), DIM)
        spill.add(ids[:half], clustered(half, 1, mine))
        spill.add(ids[half:], clustered(args.n - half, 2, hidden))
        spill.write(order=ids, ann_min_rows=min(ANN_MIN_ROWS, args.n))
        store = VectorStore.load(Path(scratch))
        faiss.omp_set_num_threads(1)
        probes = {"hidden": clustered(args.pairs + 20, 3, hidden),
                  "absent": (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(
                      rng.standard_normal((args.pairs + 20, DIM)).astype(np.float32))}
        # The same allowed rows twice: one read through whole lists (the bitmap selector, as
        # before issue 22), one by access group (the prober's group, the hidden group).
        sets = {}
        for name, groups in (("whole_lists", None), ("by_group", np.array([0, half, args.n]))):
            store.groups = groups
            sets[name] = np.sort(ids[:half])
            sets[name].setflags(write=False)
            store.search_planned(probes["absent"][0], sets[name], 10)  # planned once, kept
        rows = []
        for name, allowed in sets.items():
            cpu_ms: dict[str, list[float]] = {"hidden": [], "absent": []}
            wall_ms: dict[str, list[float]] = {"hidden": [], "absent": []}
            plans: set[str] = set()
            for i in range(args.pairs + 20):
                for kind in (("hidden", "absent") if rng.random() < 0.5 else
                             ("absent", "hidden")):
                    started, thread = time.perf_counter(), time.thread_time()
                    _, plan = store.search_planned(probes[kind][i], allowed, 10)
                    if i >= 20:  # after a warm-up
                        cpu_ms[kind].append((time.thread_time() - thread) * 1000)
                        wall_ms[kind].append((time.perf_counter() - started) * 1000)
                        plans.add(plan.value)
            z_cpu, _ = mann_whitney_z(cpu_ms["hidden"], cpu_ms["absent"])
            z_wall, p_wall = mann_whitney_z(wall_ms["hidden"], wall_ms["absent"])
            rows.append({
                "read": name, "n": args.n, "prober_share": round(half / args.n, 2),
                "pairs": args.pairs, "plans": sorted(plans),
                **{f"{kind}_cpu_ms_p50": round(statistics.median(cpu_ms[kind]), 3)
                   for kind in cpu_ms},
                **{f"{kind}_wall_ms_p50": round(statistics.median(wall_ms[kind]), 3)
                   for kind in wall_ms},
                "z_cpu": round(z_cpu, 2), "z_wall": round(z_wall, 2),
                "p_wall": float(f"{p_wall:.3g}"), "load_average": round(os.getloadavg()[0], 2)})
            print(json.dumps(rows[-1]), flush=True)
    write_results(args.json, cpu(), rows)


if __name__ == "__main__":
    main()
