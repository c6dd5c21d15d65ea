"""Build time and chunks/s of the indexer on the demo corpus and on BEIR SciFact.

    .venv/bin/python benchmarks/build_speed.py [--skip-scifact] [--index-root DIR]

Prints one JSON object per build and writes them to benchmarks/results/build_speed.json. Each
corpus is built twice: a cold build (every chunk embedded) and a rebuild of the unchanged corpus
(every vector reused), which is what a nightly re-index of an unchanged corpus costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.scifact_corpus import SHARED, make_corpus  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.embed.embedder import Embedder, embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, corpus: Path, index: Path, settings: IndexerSettings,
            embedder: Embedder) -> list[dict[str, object]]:
    rows = []
    for run in ("cold", "unchanged rebuild"):
        report = build(corpus, index, settings, embedder)
        row = {"corpus": name, "run": run, "documents": report.documents,
               "skipped": len(report.skipped), "chunks": report.chunks,
               "embedded": report.embedded, "reused": report.reused,
               "seconds": report.seconds, "embed_seconds": report.embed_seconds,
               "chunks_per_second": round(report.chunks / report.seconds, 1),
               "embedded_chunks_per_second": round(report.embedded / report.embed_seconds, 1)
               if report.embed_seconds else None}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--index-root", type=Path, default=None)
    args = parser.parse_args()
    settings = IndexerSettings(progress=False)
    embedder = embedder_for(settings)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.index_root or Path(scratch)
        rows = measure("demo", ROOT / "corpora" / "demo", root / "demo-index", settings, embedder)
        if not args.skip_scifact and (SHARED / "corpus.jsonl").exists():
            corpus = make_corpus(Path(scratch) / "scifact")
            rows += measure("scifact", corpus, root / "scifact-index", settings, embedder)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "torch_threads": settings.torch_threads},
              "settings": {"chunk_tokens": settings.chunk_tokens,
                           "chunk_overlap": settings.chunk_overlap,
                           "batch_size": settings.batch_size}, "builds": rows}
    out = ROOT / "benchmarks" / "results" / "build_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
