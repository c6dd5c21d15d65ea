"""Filtered dense search at scale: the project's own vector store against LangChain's FAISS store.

    .venv/bin/python benchmarks/filtered_search.py --n 1000000 --json OUT [--queries 200]
        [--peer-n 1000000] [--no-ann]
    .venv/bin/python benchmarks/filtered_search.py --vectors FILE --as-if 10000000 --json OUT

Synthetic clustered, normalised 384-d vectors (no embedding) with hash-like chunk ids go through
the project's own store as a build writes it (spilled to disk block by block, written in layout
order, the IVF index built where the generation is large enough; then loaded memory-mapped and
searched), one thread per query; the report says which plan ran (exact or approximate).
For visible shares 100 / 30 / 10 / 1 / 0.1 %, laid out contiguous (a partner's chunks together,
as the indexer lays them out by access rule) and scattered (a partner's chunks spread over the
whole index), it measures: recall@10 against exact filtered search (numpy brute force over the
allowed rows), the fewest results any query got, p50/p99 latency, and the cost of planning a new
allowed set. Wall-clock latency and, beside it, the query thread's CPU time (what a query costs
when a core is free: on a shared machine the wall clock also counts time waiting for a core).
In the same run the peer, LangChain's FAISS vector store (langchain-community,
`pip install -e '.[bench]'`), answers the same queries with the same filter (a metadata callable
on the same allowed ids) and its default fetch_k, over the first --peer-n vectors (its
in-memory docstore and its own copy of the vectors do not fit beside ours past a few million on
24 GB). Memory per chunk is the store's own bytes, the IVF index included.

Real vectors: `--vectors FILE` (a float32 .npy of normalised rows, e.g. what
benchmarks/real_vectors.py makes) takes the index and the queries from the file instead: its
last 300 rows are the queries, the rows before them the index in the file's order (--n is
theirs). `--as-if N` asks what the planner would do at N chunks: the IVF gets the lists an
N-chunk generation would get (ann.lists_for(N)), each set's plan is the planner's for the same
share and layout of N rows (its concentration in the lists measured on the file's IVF), and an
approximate search scans what an N-chunk search would: the same share of the index's entries
(ann.index_share of the same lists), at least the same share of the allowed entries
(ann.allowed_floor at N), so about the same fraction of the lists; recall@10 is
then measured on the file's rows (exact plans give 1.0 by construction), `model_ms_at_n` is
the cost model's estimate of the plan at N (what the planner weighs), and
`query_model_ms_at_n_p50`/`_p99` the model's cost of each query from the lists it probed (the
same shares of the index's entries and of the allowed ones, at N). Latencies measured in that
mode are those of the file's rows, not of N. The peer does not run with --as-if.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

import indexer.store.ann as ann  # noqa: E402
import indexer.store.vectors as vectors  # noqa: E402
from benchmarks.machine import cpu as machine  # noqa: E402
from indexer.store.planner import (  # noqa: E402
    ANN_CALL_US,
    ANN_CODE_US,
    ANN_ENTRY_US,
    GATHER_US_PER_ROW,
    SEQ_US_PER_ROW,
    Approximate,
    Plan,
    Strategy,
    plan,
)
from indexer.store.vector_file import ANN_MIN_ROWS, VectorFile, build_ann  # noqa: E402
from indexer.store.vectors import VectorStore  # noqa: E402

DIM, K = 384, 10
FILE_QUERIES = 300  # --vectors: the file's last rows
SHARES = (1.0, 0.3, 0.1, 0.01, 0.001)
LAYOUTS = ("contiguous", "scattered")


def clustered(n: int, seed: int, centers: np.ndarray, spread: float = 0.6) -> np.ndarray:
    """Points around random cluster centres, normalised: neighbours are real, not uniform noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        block = centers[rng.integers(0, len(centers), stop - start)]
        block += spread * rng.standard_normal((stop - start, DIM), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def allowed_rows(n: int, share: float, layout: str, seed: int) -> np.ndarray:
    m = max(1, int(round(n * share)))
    rng = np.random.default_rng(seed)
    if layout == "contiguous":
        start = int(rng.integers(0, n - m + 1))
        return np.arange(start, start + m, dtype=np.int64)
    return np.sort(rng.choice(n, m, replace=False)).astype(np.int64)


def exact_top(matrix: np.ndarray, ids: np.ndarray, rows: np.ndarray,
              queries: np.ndarray) -> list[list[int]]:
    """Ground truth: brute force over the allowed rows only, ties by chunk id."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, rows.size, 131072):
        part = rows[start:start + 131072]
        scores = queries @ matrix[part].T
        best_scores = np.concatenate((best_scores, scores), axis=1)
        best_ids = np.concatenate((best_ids, np.broadcast_to(ids[part], scores.shape)), axis=1)
        if best_scores.shape[1] > K * 4:
            keep = np.argpartition(-best_scores, K * 4 - 1, axis=1)[:, :K * 4]
        else:
            keep = np.argsort(-best_scores, axis=1)
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return [best_ids[q][np.lexsort((best_ids[q], -best_scores[q]))[:K]].tolist()
            for q in range(len(queries))]


def summarise(system: str, share: float, layout: str, found: list[list[int]],
              truth: list[list[int]], latencies: list[float],
              cpu: list[float]) -> dict[str, object]:
    recall = statistics.mean(len(set(f) & set(t)) / len(t) for f, t in zip(found, truth,
                                                                          strict=True))
    return {"system": system, "share": share, "layout": layout, "queries": len(found),
            "recall_at_10": round(recall, 4), "min_results": min(len(f) for f in found),
            "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(float(np.percentile(latencies, 99)), 3),
            "cpu_p50_ms": round(statistics.median(cpu), 3)}


def planned_at(total: int, share: float, layout: str, seed: int, purity: float | None = None,
               holding: float | None = None) -> tuple[Plan, Approximate | None]:
    """The planner's plan for the same share and layout of a `total`-row generation (with its
    IVF if it would have one), and the approximate plan's shape there. `purity`: how much of
    the lists holding the set is allowed, `holding`: their share of the index (both measured
    on the file's IVF; default: spread evenly over every list)."""
    approximate = None
    if total >= ANN_MIN_ROWS:
        m = max(1, int(round(total * share)))
        approximate = ann.approximate_for(ann.lists_for(total), total, m, ann.depth_for(K),
                                          purity if purity is not None else m / total,
                                          holding=total * holding if holding else None)
    return plan(allowed_rows(total, share, layout, seed), total, approximate), approximate


def concentration(index: ann.AnnIndex, rows: np.ndarray) -> tuple[float, float]:
    """How much of the lists holding these rows is allowed (weighted by allowed entries), and
    the share of the index those lists hold."""
    guide = index.approximate(rows, ann.depth_for(K))
    assert guide.per_list is not None
    sizes = index.list_sizes
    return ann.purity_of(guide.per_list, sizes), \
        float(sizes[guide.per_list > 0].sum()) / index.total


def query_ms_at(index: ann.AnnIndex, lists: np.ndarray, per_list: np.ndarray | None,
                total: int, share: float) -> float:
    """The cost model's estimate of one query's search at `total` chunks, from the lists it
    probed here: the same shares of the index's entries and of the allowed entries, at N."""
    assert per_list is not None
    entries = index.list_sizes[lists].sum() / index.total * total
    codes = per_list[lists].sum() / per_list.sum() * share * total
    return (ANN_CALL_US + index.lists * SEQ_US_PER_ROW + entries * ANN_ENTRY_US
            + codes * ANN_CODE_US + ann.depth_for(K) * GATHER_US_PER_ROW) / 1000


def modelled_ms(chosen: Plan, approximate: Approximate | None) -> float:
    """The cost model's estimate of a plan (planner.py), in ms."""
    if chosen.strategy is Strategy.APPROXIMATE and approximate is not None:
        return approximate.cost_us() / 1000
    per_row = GATHER_US_PER_ROW if chosen.strategy is Strategy.ROWS else SEQ_US_PER_ROW
    rows = chosen.total if chosen.strategy is Strategy.SCAN else chosen.size
    return rows * per_row / 1000


def langchain_store(matrix: np.ndarray, ids: np.ndarray):  # type: ignore[no-untyped-def]
    """LangChain's FAISS store over the same vectors, as its from_embeddings would build it
    (IndexFlatL2, an in-memory docstore, the chunk id in each document's metadata)."""
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_core.embeddings import FakeEmbeddings

    index = faiss.IndexFlatL2(matrix.shape[1])
    index.add(matrix)
    keys = [str(i) for i in range(len(ids))]
    docstore = InMemoryDocstore({key: Document(page_content="", metadata={"id": int(cid)})
                                 for key, cid in zip(keys, ids.tolist(), strict=True)})
    return FAISS(FakeEmbeddings(size=matrix.shape[1]), index, docstore, dict(enumerate(keys)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer-queries", type=int, default=50,
                        help="queries for LangChain (each scans the whole index)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-n", type=int, default=1_000_000,
                        help="the peer searches the first N vectors (its memory: see above)")
    parser.add_argument("--no-ann", action="store_true", help="exact plans only (no IVF)")
    parser.add_argument("--no-pack", action="store_true",
                        help="never pack scattered sets (as with an IVF: rows read by position)")
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES),
                        help="visible shares to measure (default: 1 0.3 0.1 0.01 0.001)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="directory for the store's files (default: a temporary one)")
    parser.add_argument("--vectors", type=Path, default=None,
                        help="real vectors: a float32 .npy of normalised rows; its last 300 "
                             "rows are the queries, the rest the index (--n is theirs)")
    parser.add_argument("--as-if", type=int, default=None, metavar="N",
                        help="the IVF's lists, the probes and each plan as the planner would "
                             "choose them at N chunks (recall measured on these rows)")
    args = parser.parse_args()
    if args.no_pack:
        vectors.PACK_MIN_ROWS = 2**62
    as_if = args.as_if
    rng = np.random.default_rng(0)
    source = None
    if args.vectors is not None:
        source = np.load(args.vectors, mmap_mode="r")
        if source.dtype != np.float32 or source.ndim != 2 or len(source) <= FILE_QUERIES:
            parser.error(f"{args.vectors}: {source.shape} {source.dtype}, not float32 rows")
        n, dim = len(source) - FILE_QUERIES, int(source.shape[1])
        queries = np.ascontiguousarray(source[n:][:args.queries])
    else:
        n, dim = args.n, DIM
        centers = rng.standard_normal((max(16, n // 1000), DIM)).astype(np.float32)
        queries = clustered(args.queries, 2, centers)
    ids = rng.choice(2**53, n, replace=False).astype(np.int64)  # hash-like, as the indexer's
    if as_if is not None:
        args.no_peer = True
        lists_at = ann.lists_for(as_if)
        if as_if >= ANN_MIN_ROWS and n < lists_at * ann.TRAIN_PER_LIST:
            parser.error(f"--as-if {as_if}: its {lists_at} lists need {lists_at * 40} rows "
                         f"to train, the index has {n}")

    scratch_dir = tempfile.TemporaryDirectory(dir=args.scratch)
    scratch = Path(scratch_dir.name)
    started = time.perf_counter()
    spill = VectorFile(scratch, dim)
    for start in range(0, n, 1_000_000):  # generated and written a block at a time
        stop = min(n, start + 1_000_000)
        block = np.asarray(source[start:stop]) if source is not None else \
            clustered(stop - start, 1 + start, centers)
        spill.add(ids[start:start + block.shape[0]], block)
    written = time.perf_counter()
    if as_if is None:
        spill.write(order=ids, ann_min_rows=n + 1 if args.no_ann else ANN_MIN_ROWS)
    else:  # the IVF of an N-chunk generation, if it would have one, over these rows
        spill.write(order=ids, ann_min_rows=n + 1)
        if as_if >= ANN_MIN_ROWS and not args.no_ann:
            build_ann(scratch, ann.lists_for(as_if))
    build_s = time.perf_counter() - written
    store = VectorStore.load(scratch)
    matrix = np.load(scratch / "vectors.npy", mmap_mode="r")  # rows in `ids` order
    faiss.omp_set_num_threads(1)
    print(f"n={n}: generated in {written - started:.1f} s, written and indexed in "
          f"{build_s:.1f} s (IVF: {store.ann is not None})", file=sys.stderr, flush=True)

    peer_n = min(n, args.peer_n)
    peer = None if args.no_peer else langchain_store(np.ascontiguousarray(matrix[:peer_n]),
                                                     ids[:peer_n])
    rows: list[dict[str, object]] = []
    for share in args.shares:
        for layout in LAYOUTS:
            picked = allowed_rows(n, share, layout, seed=int(share * 1e6) + len(layout))
            allowed = np.unique(ids[picked])
            allowed.setflags(write=False)  # as the server's AllowedSet
            truth = exact_top(matrix, ids, picked, queries)
            t0 = time.perf_counter()
            chosen = store.plan_for(allowed)
            plan_ms = (time.perf_counter() - t0) * 1000
            at = None
            if as_if is not None:
                purity = holding = guide = None
                if store.ann is not None:  # how concentrated the set is in the IVF's lists
                    purity, holding = concentration(store.ann, picked)
                    guide = store.ann.approximate(picked, ann.depth_for(K)).per_list
                at = planned_at(as_if, share, layout, int(share * 1e6) + len(layout), purity,
                                holding)
                floor = ann.allowed_floor(int(round(as_if * share)), ann.depth_for(K))
            found, latencies, cpu, probed, at_n = [], [], [], [], []
            ran = set()
            for query in queries:
                t0, c0 = time.perf_counter(), time.thread_time()
                if at is not None and at[0].strategy is Strategy.APPROXIMATE:
                    assert at[1] is not None and store.ann is not None
                    hits, visited = store.search_approximate(query, picked, K, floor)
                    strategy = Strategy.APPROXIMATE
                    probed.append(visited.size)
                    at_n.append(query_ms_at(store.ann, visited, guide, at[0].total, share))
                else:
                    hits, strategy = store.search_planned(query, allowed, K)
                latencies.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
                found.append([h.chunk_id for h in hits])
                ran.add(strategy)
            row = summarise("ours", share, layout, found, truth, latencies, cpu)
            plan_name = "packed" if store.is_packed(allowed) else chosen.strategy.value
            if at is not None:
                if at[0].strategy is not Strategy.APPROXIMATE and Strategy.APPROXIMATE in ran:
                    raise SystemExit("an exact plan at N ran approximate on the file's rows")
                plan_name = at[0].strategy.value
                lists = store.ann.lists if store.ann is not None else None
                row.update(as_if=as_if, model_ms_at_n=round(modelled_ms(*at), 3),
                           ivf_lists=lists)
                if probed:
                    assert at[1] is not None and lists is not None
                    row.update(allowed_floor=round(floor, 4),
                               index_share=round(ann.index_share(lists), 4),
                               scanned_share_at_n=round(at[1].scanned / as_if, 4),
                               lists_probed_p50=statistics.median(probed),
                               lists_probed_max=max(probed),
                               query_model_ms_at_n_p50=round(statistics.median(at_n), 3),
                               query_model_ms_at_n_p99=round(float(np.percentile(at_n, 99)), 3))
            row["path"] = "approximate" if Strategy.APPROXIMATE in ran else "exact"
            row.update(plan=plan_name, runs=int(chosen.starts.size),
                       visible=int(allowed.size), first_plan_ms=round(plan_ms, 3))
            print(json.dumps(row), flush=True)
            rows.append(row)
            if peer is not None:
                picked = allowed_rows(peer_n, share, layout, seed=int(share * 1e6) + len(layout))
                visible = set(ids[picked].tolist())
                peer_truth = exact_top(matrix, ids, picked, queries[:args.peer_queries])

                def may_see(meta: dict[str, int], visible: set[int] = visible) -> bool:
                    return meta["id"] in visible

                found, latencies, cpu = [], [], []
                for query in queries[:args.peer_queries]:
                    t0, c0 = time.perf_counter(), time.thread_time()
                    docs = peer.similarity_search_with_score_by_vector(
                        query.tolist(), k=K, filter=may_see)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.thread_time() - c0) * 1000)
                    found.append([d.metadata["id"] for d, _ in docs])
                row = summarise("langchain-faiss", share, layout, found, peer_truth, latencies,
                                cpu)
                row.update(fetch_k=20, visible=len(visible), n=peer_n)
                print(json.dumps(row), flush=True)
                rows.append(row)

    result = {
        "n": n, "dim": dim, "k": K, "queries": len(queries),
        "vectors": str(args.vectors) if args.vectors is not None else None, "as_if": as_if,
        "ann": {"lists_per_sqrt": ann.LISTS_PER_SQRT,
                "scan_per_sqrt_lists": ann.SCAN_PER_SQRT_LISTS,
                "min_allowed_scanned": ann.MIN_ALLOWED_SCANNED,
                "expected_fill": ann.EXPECTED_FILL, "depth": ann.depth_for(K)},
        "peer_queries": args.peer_queries,
        "peer_n": peer_n, "threads_per_query": 1, "write_and_index_s": round(build_s, 1),
        "ivf_lists": store.ann.lists if store.ann is not None else None,
        "bytes_per_chunk": round((store.nbytes + store.ann_bytes) / n, 1),
        "ivf_bytes_per_chunk": round(store.ann_bytes / n, 1),
        "plan_cache_bytes": store.plan_cache_bytes,
        "packed_bytes": store.packed_bytes,
        "bytes_per_chunk_with_caches": round(
            (store.nbytes + store.ann_bytes + store.plan_cache_bytes) / n, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0], "cpus": os.cpu_count(), "cpu_model": machine()["cpu"],
        "faiss": faiss.__version__, "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    scratch_dir.cleanup()
    print(f"bytes per chunk {result['bytes_per_chunk']} "
          f"({result['bytes_per_chunk_with_caches']} with cached plans and packed copies); "
          f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
