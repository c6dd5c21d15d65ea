"""Query latency, exactness and quality of filtered search on BEIR SciFact.

    .venv/bin/python benchmarks/search_speed.py [--index DIR]

Needs the SciFact index that build_speed.py builds (pass --index-root there, then --index here),
or builds one itself. For the admin and for partners that see 1 %, 10 % and 50 % of the corpus:
- latency of one query through the API's search path (embed + allowed set + FAISS + SQLite),
  one thread each for torch and FAISS as in the server;
- exactness: the filtered top-10 equals an exact numpy search over the partner's chunks alone;
- what a post-filter (global top-k, then drop what the partner may not see, as LangChain's and
  txtai's FAISS stores do) would have returned instead;
- nDCG@10 over the SciFact test queries (document level), against the partner's visible qrels.
Prints JSON and writes benchmarks/results/search_speed.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.scifact_corpus import SHARE, doc_shard, load_queries, make_corpus  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402
from search_api.identity.principal import Principal  # noqa: E402
from search_api.retrieval.live import load_index  # noqa: E402
from search_api.retrieval.search import search  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VISIBLE_SHARDS = {"p1": range(0, 1), "p10": range(0, 10), "p50": range(0, 50),
                  "admin": range(0, 100)}


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    scratch = tempfile.TemporaryDirectory()
    index = args.index
    if index is None:
        corpus = make_corpus(Path(scratch.name) / "scifact")
        index = Path(scratch.name) / "index"
        build(corpus, index, IndexerSettings(progress=False))
    loaded = load_index(Generation.open_live(index), None, threads=1)
    queries, qrels = load_queries("test")
    shard_of = doc_shard()
    all_ids = loaded.generation.all_chunk_ids()
    matrix = loaded.generation.vectors.vectors(all_ids)
    doc_of = {cid: p.doc_id for cid, p in loaded.generation.passages(all_ids.tolist()).items()}
    today = date.today()
    rows = []
    for who, shards in VISIBLE_SHARDS.items():
        principal = Principal("bench", None if who == "admin" else who, who == "admin")
        allowed = loaded.access.allowed_for(principal, today)
        visible_docs = {d for d, s in shard_of.items() if s in shards}
        mask = np.isin(all_ids, allowed.ids)
        latencies, exact, ndcgs, post_counts, post_ndcgs = [], 0, [], [], []
        for qid, text in queries.items():
            started = time.perf_counter()
            results = search(loaded, text, allowed, 10).results
            latencies.append((time.perf_counter() - started) * 1000)
            qvec = loaded.embedder.embed_query(text)
            scores = matrix @ qvec
            sub = np.flatnonzero(mask)
            order = sub[np.lexsort((all_ids[sub], -scores[sub]))][:10]
            exact += [p.chunk_id for p, _ in results] == all_ids[order].tolist()
            relevant = qrels[qid] & visible_docs
            deep = search(loaded, text, allowed, 100).results
            ranked = list(dict.fromkeys(p.doc_id for p, _ in deep))
            if relevant:
                ndcgs.append(ndcg_at_10(ranked, relevant))
            # Post-filter as in LangChain's FAISS store: fetch_k=20 global hits, then filter.
            glob = np.argsort(-scores)[:20]
            kept = [int(all_ids[j]) for j in glob if mask[j]][:10]
            post_counts.append(len(kept))
            if relevant:
                post_ranked = list(dict.fromkeys(doc_of[c] for c in kept))
                post_ndcgs.append(ndcg_at_10(post_ranked, relevant))
        row = {
            "principal": who, "share_of_corpus": SHARE.get(who, 1.0),
            "visible_chunks": len(allowed), "queries": len(queries),
            "latency_ms_p50": round(statistics.median(latencies), 2),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
            "exact_top10_rate": round(exact / len(queries), 4),
            "ndcg@10": round(statistics.mean(ndcgs), 4) if ndcgs else None,
            "queries_with_visible_relevant": len(ndcgs),
            "postfilter_mean_results_of_10": round(statistics.mean(post_counts), 2),
            "postfilter_queries_with_0_results": sum(c == 0 for c in post_counts),
            "postfilter_ndcg@10": round(statistics.mean(post_ndcgs), 4) if post_ndcgs else None,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = ROOT / "benchmarks" / "results" / "search_speed.json"
    out.write_text(json.dumps({"chunks": len(all_ids), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
