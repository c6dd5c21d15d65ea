"""Filtered dense search at scale: the project's own vector store against LangChain's FAISS store.

    .venv/bin/python benchmarks/filtered_search.py --n 1000000 --json OUT [--queries 200]

Synthetic clustered, normalised 384-d vectors (no embedding) with hash-like chunk ids go through
the project's own store (VectorStore: add, save in a layout, load, search), one thread per query.
For visible shares 100 % / 10 % / 1 % / 0.1 %, laid out contiguous (a partner's chunks together,
as the indexer lays them out by access rule) and scattered (a partner's chunks spread over the
whole index), it measures: recall@10 against exact filtered search (numpy brute force over the
allowed rows), the fewest results any query got, p50/p99 latency, and the cost of planning a new
allowed set. Wall-clock latency and, beside it, the query thread's CPU time (what a query costs
when a core is free: on a shared machine the wall clock also counts time waiting for a core).
In the same run the peer, LangChain's FAISS vector store (langchain-community,
`pip install -e '.[bench]'`), answers the same queries with the same filter (a metadata callable
on the same allowed ids) and its default fetch_k. Memory per chunk is the store's own bytes.
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

from indexer.store.vectors import VectorStore  # noqa: E402

DIM, K = 384, 10
SHARES = (1.0, 0.1, 0.01, 0.001)
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


def langchain_store(matrix: np.ndarray, ids: np.ndarray):  # type: ignore[no-untyped-def]
    """LangChain's FAISS store over the same vectors, as its from_embeddings would build it
    (IndexFlatL2, an in-memory docstore, the chunk id in each document's metadata)."""
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_core.embeddings import FakeEmbeddings

    index = faiss.IndexFlatL2(DIM)
    index.add(matrix)
    keys = [str(i) for i in range(len(ids))]
    docstore = InMemoryDocstore({key: Document(page_content="", metadata={"id": int(cid)})
                                 for key, cid in zip(keys, ids.tolist(), strict=True)})
    return FAISS(FakeEmbeddings(size=DIM), index, docstore, dict(enumerate(keys)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer-queries", type=int, default=50,
                        help="queries for LangChain (each scans the whole index)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    n = args.n
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((max(16, n // 1000), DIM)).astype(np.float32)
    matrix = clustered(n, 1, centers)
    queries = clustered(args.queries, 2, centers)
    ids = rng.choice(2**53, n, replace=False).astype(np.int64)  # hash-like, as the indexer's

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        built = VectorStore.create(DIM)
        built.add(ids, matrix)
        built.save(Path(scratch), order=ids)  # rows in generation order
        del built
        store = VectorStore.load(Path(scratch))
    load_s = time.perf_counter() - started
    print(f"n={n}: stored and loaded in {load_s:.1f} s", file=sys.stderr, flush=True)

    peer = None if args.no_peer else langchain_store(matrix, ids)
    rows: list[dict[str, object]] = []
    for share in SHARES:
        for layout in LAYOUTS:
            picked = allowed_rows(n, share, layout, seed=int(share * 1e6) + len(layout))
            allowed = np.unique(ids[picked])
            allowed.setflags(write=False)  # as the server's AllowedSet
            truth = exact_top(matrix, ids, picked, queries)
            t0 = time.perf_counter()
            chosen = store.plan_for(allowed)
            plan_ms = (time.perf_counter() - t0) * 1000
            found, latencies, cpu = [], [], []
            for query in queries:
                t0, c0 = time.perf_counter(), time.thread_time()
                hits = store.search(query, allowed, K)
                latencies.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
                found.append([h.chunk_id for h in hits])
            row = summarise("ours", share, layout, found, truth, latencies, cpu)
            plan_name = "packed" if store.is_packed(allowed) else chosen.strategy.value
            row.update(plan=plan_name, runs=int(chosen.starts.size),
                       visible=int(allowed.size), first_plan_ms=round(plan_ms, 3))
            print(json.dumps(row), flush=True)
            rows.append(row)
            if peer is not None:
                visible = set(allowed.tolist())

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
                row = summarise("langchain-faiss", share, layout, found,
                                truth[:args.peer_queries], latencies, cpu)
                row.update(fetch_k=20, visible=int(allowed.size))
                print(json.dumps(row), flush=True)
                rows.append(row)

    result = {
        "n": n, "dim": DIM, "k": K, "queries": args.queries, "peer_queries": args.peer_queries,
        "threads_per_query": 1,
        "bytes_per_chunk": round(store.nbytes / n, 1),
        "plan_cache_bytes": store.plan_cache_bytes,
        "packed_bytes": store.packed_bytes,
        "bytes_per_chunk_with_caches": round((store.nbytes + store.plan_cache_bytes) / n, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
        "faiss": faiss.__version__, "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"bytes per chunk {result['bytes_per_chunk']} "
          f"({result['bytes_per_chunk_with_caches']} with cached plans and packed copies); "
          f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
