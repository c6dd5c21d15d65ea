"""The approximate path's recall@10 against how many lists it probes and how many candidates it
re-scores, on real vectors, for the IVF a generation of N chunks would have.

    nice -n 19 .venv/bin/python benchmarks/recall_sweep.py --vectors FILE \
        --as-if 1000000 10000000 --json benchmarks/results/recall_sweep.json

For each N the IVF gets ann.lists_for(N) lists (trained and filled on the file's index rows, as
filtered_search.py --as-if does); for each share and layout of benchmarks/filtered_search.py
(the same allowed rows) it gives the planner's plan at N and the lists it would probe first,
then recall@10 against exact search (the file's last 300 rows as queries) when the first probe
scans a given share of the index's entries in the nearest lists that hold allowed entries (as
a search does; "planner" is ann.index_share, what a search scans; the allowed floor is the one
of N) and the best `depth` candidates by their 8-bit codes are re-scored exactly. What it is
for: choosing SCAN_PER_SQRT_LISTS and the depth in ann.py by measurement, not by guess.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

import indexer.store.ann as ann  # noqa: E402
from benchmarks.filtered_search import (  # noqa: E402
    FILE_QUERIES,
    LAYOUTS,
    K,
    allowed_rows,
    concentration,
    modelled_ms,
    planned_at,
)
from benchmarks.machine import cpu as machine  # noqa: E402
from indexer.store.ann import AnnIndex, bitmap_of  # noqa: E402

SHARES = (1.0, 0.3, 0.1, 0.01)


def truth_of(matrix: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row positions of each query's exact top 10 among `rows`."""
    scores = queries @ matrix[rows].T
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    return rows[top]


def recall_at(index: AnnIndex, matrix: np.ndarray, rows: np.ndarray, queries: np.ndarray,
              truth: np.ndarray, share: float, floor: float,
              depth: int) -> tuple[float, float]:
    """Mean recall@10 when the first probe scans `share` of the index's entries and at least
    `floor` of the allowed ones (the nearest lists that hold any, as a search does) and `depth`
    candidates are re-scored; and the mean lists probed."""
    bitmap = bitmap_of(rows, len(matrix))
    per_list = index.approximate(rows, depth).per_list
    assert per_list is not None
    hits, lists = [], []
    for q, query in enumerate(queries):
        cands, probed = index.candidates(query, bitmap, per_list, depth, floor, share)
        best = cands[np.argsort(-(matrix[cands] @ query))[:K]]
        hits.append(len(set(best.tolist()) & set(truth[q].tolist())) / K)
        lists.append(probed.size)
    return statistics.mean(hits), statistics.mean(lists)


def scanned_ratio(index: AnnIndex, queries: np.ndarray, nprobe: int) -> float:
    """Entries in the lists a query probes, over nprobe x the mean list's: k-means lists of real
    text are uneven, and a query's nearest lists tend to be the long ones (the cost model
    assumes the mean)."""
    ivf = faiss.extract_index_ivf(index._index)
    sizes = np.array([ivf.invlists.list_size(i) for i in range(ivf.nlist)])
    _, probed = ivf.quantizer.search(queries, nprobe)
    return float(sizes[probed].sum(axis=1).mean() / (nprobe * sizes.mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--as-if", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    parser.add_argument("--probed", type=float, nargs="+",
                        default=[0.005, 0.01, 0.016, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2],
                        help="shares of the index's entries the first probe scans")
    parser.add_argument("--depths", type=int, nargs="+", default=[40, 100])
    parser.add_argument("--rows", type=int, default=None,
                        help="use a random ROWS of the index rows, in order, and the same "
                             "queries (how recall moves with n)")
    parser.add_argument("--lists-scale", type=float, default=1.0,
                        help="lists = this x what an N-chunk generation gets (more lists: "
                             "does a finer IVF need less of the index scanned?)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    source = np.load(args.vectors, mmap_mode="r")
    n = len(source) - FILE_QUERIES
    queries = np.ascontiguousarray(source[n:], dtype=np.float32)
    kept = np.arange(n) if not args.rows or args.rows >= n else \
        np.sort(np.random.default_rng(1).choice(n, args.rows, replace=False))
    n = kept.size
    matrix = np.ascontiguousarray(source[:len(source) - FILE_QUERIES][kept], dtype=np.float32)
    faiss.omp_set_num_threads(int(os.environ.get("SWEEP_THREADS", "1")))
    out: list[dict[str, object]] = []
    for total in args.as_if:
        lists = round(ann.lists_for(total) * args.lists_scale)
        started = time.perf_counter()
        index = AnnIndex.build(matrix, lists)
        print(f"N={total}: {lists} lists over {n} rows in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
        uneven = {str(f): round(scanned_ratio(index, queries, max(1, round(f * lists))), 3)
                  for f in args.probed}
        print(json.dumps({"as_if": total, "scanned_over_mean": uneven}), flush=True)
        out.append({"as_if": total, "lists": lists, "scanned_over_mean": uneven})
        for share in args.shares:
            for layout in LAYOUTS:
                seed = int(share * 1e6) + len(layout)
                rows = allowed_rows(n, share, layout, seed)
                purity, holding = concentration(index, rows)
                chosen, approximate = planned_at(total, share, layout, seed, purity, holding)
                truth = truth_of(matrix, rows, queries)
                floor = ann.allowed_floor(round(total * share), ann.depth_for(K))
                row: dict[str, object] = {
                    "as_if": total, "n": n, "lists": lists, "share": share, "layout": layout,
                    "purity": round(purity, 4), "holding": round(holding, 4),
                    "plan_at_n": chosen.strategy.value,
                    "model_ms_at_n": round(modelled_ms(chosen, approximate), 3),
                    "index_share": round(ann.index_share(lists), 4),
                    "allowed_floor": round(floor, 4)}
                recalls, probed = {}, {}
                for depth in args.depths:
                    for fraction in [*args.probed, "planner"]:
                        recall, mean_lists = recall_at(
                            index, matrix, rows, queries, truth,
                            ann.index_share(lists) if fraction == "planner" else float(fraction),
                            floor, depth)
                        recalls[f"{fraction}/{depth}"] = round(recall, 4)
                        probed[f"{fraction}/{depth}"] = round(mean_lists, 1)
                row["lists_probed_mean"] = probed
                row["recall_at_10"] = recalls
                print(json.dumps(row), flush=True)
                out.append(row)
    result = {"vectors": str(args.vectors), "n": n, "lists_scale": args.lists_scale,
              "queries": len(queries), "k": K,
              "probed_fractions": args.probed, "depths": args.depths,
              "machine": machine(), "faiss": faiss.__version__, "rows": out}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
