"""nDCG@10 and recall@100 of a BEIR-format set, through the normal indexer and search code.

    .venv/bin/python benchmarks/beir_eval.py --data ../shared/eval/scifact [--split test] \
        [--mode hybrid|dense|lexical|all] --json OUT [--run RUN.trec] [--index DIR]

DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/SPLIT.tsv are read where they are (never
copied): the corpus directory handed to the indexer holds a link to corpus.jsonl and an
access.yaml that lets every partner see everything. `indexer.build.build` indexes it into
--index (default: a scratch directory; an index built before is rebuilt incrementally, every
unchanged chunk keeping its vector, so a second run costs seconds). Every query is answered by
`search_api.search.search` with an admin's allowed set; documents are ranked by their best chunk.
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

from indexer.build import build  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store import Generation  # noqa: E402
from search_api.access import Principal  # noqa: E402
from search_api.live import LoadedIndex, load_index  # noqa: E402
from search_api.search import Mode, search  # noqa: E402

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


def index_corpus(data: Path, index: Path, scratch: Path) -> dict[str, object]:
    """Build (or incrementally rebuild) the index of data/corpus.jsonl with the normal indexer."""
    corpus = scratch / "corpus"
    corpus.mkdir()
    (corpus / "access.yaml").write_text(MANIFEST)
    (corpus / "corpus.jsonl").symlink_to((data / "corpus.jsonl").resolve())
    report = build(corpus, index, IndexerSettings(progress=False))
    return {"documents": report.documents, "chunks": report.chunks,
            "embedded": report.embedded, "index_seconds": report.seconds}


def rank_documents(loaded: LoadedIndex, query: str, mode: Mode) -> list[tuple[str, float]]:
    """The top 100 documents, each scored by its best chunk."""
    admin = loaded.access.allowed_for(Principal("beir-eval", None, True), date.today())
    best: dict[str, float] = {}
    for passage, score in search(loaded, query, admin, CHUNKS_PER_QUERY, mode):
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
        built = index_corpus(args.data, index, Path(scratch))
        loaded = load_index(Generation.open_live(index), None, threads=1)
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
