"""nDCG@10 and recall@100 of a BEIR-format set, through the normal indexer and search code.

    .venv/bin/python benchmarks/beir_eval.py --data ../shared/eval/scifact [--split test] \
        [--mode hybrid|dense|lexical|all] --json OUT [--run RUN.trec] [--index DIR]

DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/SPLIT.tsv are read where they are: the
corpus handed to the indexer is a scratch directory (never in the repository) with a copy of
corpus.jsonl and an access.yaml that lets every partner see everything. `indexer.build.build`
indexes it into --index (default: a scratch directory; an index built before is rebuilt
incrementally, every unchanged chunk keeping its vector, so a second run costs little). Every
query is answered by `search_api.retrieval.search.search` with an admin's allowed set; documents are
ranked by their best chunk.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from indexer.build import build  # noqa: E402
from indexer.embed.embedder import embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402
from search_api.access.allowed import AllowedSet  # noqa: E402
from search_api.identity.principal import Principal
from search_api.retrieval.live import LoadedIndex, load_index  # noqa: E402
from search_api.retrieval.search import Mode, search  # noqa: E402

MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
MANIFEST = 'partners: [reader]\nrules:\n  - match: "**"\n    allow: "*"\n'
CHUNKS_PER_QUERY = 300  # chunks asked for, so that their documents fill the top 100


def load_queries(data: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries that have at least one judged-relevant document, and their graded qrels."""
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].strip().lstrip("-").isdigit():
            continue  # the header line
        qid, doc_id, grade = parts
        if int(grade) > 0:
            qrels.setdefault(qid, {})[doc_id] = int(grade)
    texts = {}
    for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            texts[str(record["_id"])] = record["text"]
    return {qid: texts[qid] for qid in qrels if qid in texts}, qrels


def ndcg_at_10(ranked: list[str], grades: dict[str, int]) -> float:
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(grades.values(), reverse=True)[:10]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def recall_at_100(ranked: list[str], grades: dict[str, int]) -> float:
    return len(set(ranked[:100]) & set(grades)) / len(grades)


def open_index(data: Path, index: Path, scratch: Path) -> tuple[LoadedIndex, dict[str, object]]:
    """Build (or incrementally rebuild) the index of data/corpus.jsonl with the normal indexer,
    then open it for search with the same loaded model."""
    corpus = scratch / "corpus"
    corpus.mkdir()
    (corpus / "access.yaml").write_text(MANIFEST)
    shutil.copyfile(data / "corpus.jsonl", corpus / "corpus.jsonl")  # links out are refused
    settings = IndexerSettings(progress=False)
    embedder = embedder_for(settings)
    report = build(corpus, index, settings, embedder)
    built = {"documents": report.documents, "chunks": report.chunks,
             "embedded": report.embedded, "index_seconds": report.seconds}
    return load_index(Generation.open_live(index), embedder, threads=1), built


def rank_documents(loaded: LoadedIndex, query: str, mode: Mode) -> list[tuple[str, float]]:
    """The top 100 documents, each scored by its best chunk."""
    admin = loaded.access.allowed_for(Principal("beir-eval", None, True), date.today())
    best: dict[str, float] = {}
    for passage, score in search(loaded, query, admin, CHUNKS_PER_QUERY, mode).results:
        best.setdefault(passage.doc_id, score)
    return list(best.items())[:100]


def evaluate(loaded: LoadedIndex, queries: dict[str, str], qrels: dict[str, dict[str, int]],
             mode: Mode, run: Path | None) -> dict[str, object]:
    ndcgs, recalls, millis, lines = [], [], [], []
    for qid, text in queries.items():
        started = time.perf_counter()
        ranked = rank_documents(loaded, text, mode)
        millis.append((time.perf_counter() - started) * 1000)
        docs = [doc_id for doc_id, _ in ranked]
        ndcgs.append(ndcg_at_10(docs, qrels[qid]))
        recalls.append(recall_at_100(docs, qrels[qid]))
        lines += [f"{qid} Q0 {doc_id} {rank} {score:.6f} pks-{mode}"
                  for rank, (doc_id, score) in enumerate(ranked, start=1)]
    if run is not None:
        run.parent.mkdir(parents=True, exist_ok=True)
        run.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"mode": mode, "ndcg_at_10": round(statistics.mean(ndcgs), 4),
            "recall_at_100": round(statistics.mean(recalls), 4), "queries": len(queries),
            "query_ms_p50": round(statistics.median(millis), 2)}


def write_sample(data: Path, dest: Path, split: str = "test", queries: int = 20,
                 distractors: int = 200, seed: int = 0) -> Path:
    """A small BEIR set: the first `queries` queries, their relevant documents and `distractors`
    other documents drawn at random; for a quick look (the notebook, its test), not for figures.
    """
    texts, qrels = load_queries(data, split)
    chosen = list(texts)[:queries]
    wanted = {doc_id for qid in chosen for doc_id in qrels[qid]}
    lines = (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    others = [i for i, line in enumerate(lines) if str(json.loads(line)["_id"]) not in wanted]
    keep = set(random.Random(seed).sample(others, min(distractors, len(others))))
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    (dest / "corpus.jsonl").write_text("".join(
        line + "\n" for i, line in enumerate(lines)
        if i in keep or str(json.loads(line)["_id"]) in wanted), encoding="utf-8")
    (dest / "queries.jsonl").write_text("".join(
        json.dumps({"_id": qid, "text": texts[qid]}) + "\n" for qid in chosen), encoding="utf-8")
    (dest / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{qid}\t{doc_id}\t{grade}\n" for qid in chosen for doc_id, grade in qrels[qid].items()))
    return dest


def latency_by_share(loaded: LoadedIndex, queries: list[str], mode: Mode,
                     shares: tuple[float, ...] = (1.0, 0.1, 0.01), k: int = 10,
                     seed: int = 0) -> list[dict[str, float]]:
    """p50 / p95 of one search in process when the caller may see a random share of chunks."""
    every = loaded.access.allowed_for(Principal("beir-eval", None, True), date.today()).ids
    rows = []
    for share in shares:
        ids = np.random.default_rng(seed).choice(every, max(1, int(len(every) * share)),
                                                 replace=False)
        allowed = AllowedSet(np.sort(ids))
        millis = []
        for query in queries:
            started = time.perf_counter()
            search(loaded, query, allowed, k, mode)
            millis.append((time.perf_counter() - started) * 1000)
        rows.append({"share": share, "visible_chunks": len(allowed),
                     "p50_ms": round(statistics.median(millis), 2),
                     "p95_ms": round(float(np.percentile(millis, 95)), 2)})
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a BEIR-format directory")
    parser.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="hybrid")
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    parser.add_argument("--run", type=Path, help="also write a TREC run file (one mode only)")
    parser.add_argument("--index", type=Path, help="index directory to build into and reuse")
    parser.add_argument("--limit", type=int, help="only the first N queries (a quick look)")
    args = parser.parse_args(argv)
    modes = MODES if args.mode == "all" else (args.mode,)
    if args.run and len(modes) > 1:
        parser.error("--run needs a single --mode")
    queries, qrels = load_queries(args.data, args.split)
    if args.limit:
        queries = dict(list(queries.items())[:args.limit])
    with tempfile.TemporaryDirectory() as scratch:
        index = args.index or Path(scratch) / "index"
        loaded, built = open_index(args.data, index, Path(scratch))
        rows = []
        for mode in modes:
            row = {**evaluate(loaded, queries, qrels, mode, args.run), "split": args.split,
                   "data": str(args.data), "model": loaded.generation.info["model"], **built}
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
