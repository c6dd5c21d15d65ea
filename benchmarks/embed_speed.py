"""Embedding backends compared on the same texts, and what the indexing pipeline adds.

    .venv/bin/python benchmarks/embed_speed.py [--documents 400] [--queries 200] \
        [--json benchmarks/results/embed_speed.json]

1. Indexes the first `--documents` SciFact records (../shared/eval) cold with the default
   settings (every chunk embedded; load, chunk, embed, store, publish) and keeps the build's
   seconds and its chunk texts.
2. For each backend and precision (the reference: sentence-transformers' own `encode` on
   PyTorch fp32, what the indexer ran before; then indexer.embed.embedder.Embedder on torch f32 /
   bf16 and OpenVINO f32 / bf16): chunks/s over exactly those chunk texts (batches of the
   indexer's batch size, the indexer's threads), the cost of a query one at a time and in
   batches of 8 (one thread, as the server's query workers run), and the cosine of its vectors
   to the reference's (min and mean, chunks and queries).
3. The pipeline's overhead: the build's seconds against the default backend's bare time on the
   same chunk texts.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from benchmarks.scifact_corpus import SHARED, load_queries  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.embed.embedder import Backend, Embedder, Precision, embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKENDS: tuple[tuple[Backend, Precision], ...] = (
    ("torch", "f32"), ("torch", "bf16"), ("openvino", "f32"), ("openvino", "bf16"))


def per_item_ms(fn: object, items: list[str], batch: int) -> float:
    """Wall milliseconds per item, embedding `items` in batches of `batch`."""
    started = time.perf_counter()
    for first in range(0, len(items), batch):
        fn(items[first:first + batch])  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000 / len(items)


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = (a * b).sum(axis=1)
    return {"min": round(float(c.min()), 6), "mean": round(float(c.mean()), 6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/embed_speed.json")
    args = parser.parse_args()
    settings = IndexerSettings(progress=False)
    queries = list(load_queries("test", args.data)[0].values())[:args.queries]
    default = embedder_for(settings)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        (corpus / "access.yaml").write_text('partners: [p]\nrules:\n  - match: "**"\n'
                                            '    allow: "*"\n')
        lines = (args.data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        (corpus / "corpus.jsonl").write_text("\n".join(lines[:args.documents]) + "\n")
        report = build(corpus, Path(scratch) / "index", settings, default)
        gen = Generation.open_live(Path(scratch) / "index")
        texts = [t for (t,) in gen._db().execute("SELECT text FROM chunks ORDER BY chunk_id")]
    rows: list[dict[str, object]] = []
    reference = Embedder(settings.model, settings.batch_size, settings.torch_threads, "torch",
                         "f32")
    model = reference._model  # sentence-transformers itself: the bare reference
    ref_chunks = model.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
    ref_queries = model.encode(queries, batch_size=8, normalize_embeddings=True)
    bare_ms = per_item_ms(lambda t: model.encode(t, batch_size=settings.batch_size,
                                                 normalize_embeddings=True),
                          texts, len(texts))
    rows.append({"backend": "sentence-transformers encode, torch f32 (reference)",
                 "chunks_per_second": round(1000 / bare_ms, 1)})
    print(json.dumps(rows[-1]), flush=True)
    bare_default = 0.0
    for backend, precision in BACKENDS:
        embedder = Embedder(settings.model, settings.batch_size, settings.torch_threads,
                            backend, precision)
        chunk_ms = per_item_ms(embedder.embed, texts, len(texts))
        one_thread = Embedder(settings.model, 1, 1, backend, precision)
        row = {"backend": embedder.backend, "chunks_per_second": round(1000 / chunk_ms, 1),
               "speedup_vs_reference": round(bare_ms / chunk_ms, 2),
               "query_ms_one_at_a_time": round(per_item_ms(one_thread.embed_queries,
                                                           queries, 1), 2),
               "query_ms_in_batches_of_8": round(per_item_ms(one_thread.embed_queries,
                                                             queries, 8), 2),
               "cosine_to_reference_chunks": cosines(embedder.embed(texts), ref_chunks),
               "cosine_to_reference_queries": cosines(one_thread.embed_queries(queries),
                                                      ref_queries)}
        if embedder.backend == default.backend:
            bare_default = chunk_ms * len(texts) / 1000
        rows.append(row)
        print(json.dumps(row), flush=True)
    pipeline = {"backend": default.backend, "documents": report.documents,
                "chunks": report.chunks, "build_seconds": report.seconds,
                "embed_seconds": report.embed_seconds,
                "bare_seconds_same_texts": round(bare_default, 2),
                "pipeline_overhead": round(report.seconds / bare_default - 1, 3)
                if bare_default else None}
    print(json.dumps(pipeline), flush=True)
    result = {"cpus": os.cpu_count(), "threads": settings.torch_threads,
              "batch_size": settings.batch_size, "chunks": len(texts),
              "mean_chunk_words": round(statistics.mean(len(t.split()) for t in texts), 1),
              "queries": len(queries), "backends": rows, "pipeline": pipeline}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
