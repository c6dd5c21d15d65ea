"""What a nightly re-index costs on BEIR SciFact, measured in seconds and in chunks embedded.

    .venv/bin/python benchmarks/reindex_speed.py [--source corpus.jsonl] [--index-root DIR]

Four builds of SciFact laid out as 100 JSONL shards (benchmarks/scifact_corpus.py, read from
../shared/eval in place): the first build; a re-build with nothing changed (target: >= 20x
faster); a re-build after editing 1 % of the records, picked at random across shards (target:
>= 5x faster, only their chunks embedded). Then a long Markdown document (60 abstracts as
paragraphs) gets a paragraph inserted at its top (target: chunks embedded <= the chunks that
cover the new paragraph + 2). One loaded model serves every build, so seconds exclude model
loading. Prints JSON and writes benchmarks/results/reindex_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.scifact_corpus import SHARDS, SHARED, make_corpus  # noqa: E402
from indexer.build import BuildReport, build  # noqa: E402
from indexer.chunk import Chunk  # noqa: E402
from indexer.embed import Embedder, embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INSERTED = ("Editorial note added on re-review: the findings below were re-checked against the "
            "original laboratory notebooks, and two figures were redrawn for clarity.")


def row(step: str, report: BuildReport, **extra: object) -> dict[str, object]:
    out = {"step": step, "seconds": report.seconds, "documents": report.documents,
           "chunks": report.chunks, "embedded": report.embedded, "reused": report.reused,
           "added": report.added, "changed": report.changed, "unchanged": report.unchanged,
           "deleted": report.deleted, "files_parsed": report.files_parsed,
           "files_carried": report.files_carried, **extra}
    print(json.dumps(out), flush=True)
    return out


def edit_records(corpus: Path, share: float, seed: int = 0) -> set[str]:
    """Append a sentence to `share` of the records, picked at random; returns their ids."""
    rng = random.Random(seed)
    edited: set[str] = set()
    for shard in range(SHARDS):
        path = corpus / f"shard-{shard:02d}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if rng.random() < share:
                record = json.loads(line)
                record["text"] += " Erratum: the sample size reported above was corrected."
                lines[i] = json.dumps(record)
                edited.add(str(record["_id"]))
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return edited


def long_document(source: Path, scratch: Path, settings: IndexerSettings,
                  embedder: Embedder) -> dict[str, object]:
    corpus, index = scratch / "long", scratch / "long-index"
    corpus.mkdir()
    (corpus / "access.yaml").write_text("partners: [p]\nrules:\n  - match: '**'\n    allow: [p]\n")
    abstracts = [json.loads(line)["text"] for line in
                 source.read_text(encoding="utf-8").splitlines()[:60]]
    doc = corpus / "long-report.md"
    doc.write_text("# A long report\n\n" + "\n\n".join(abstracts) + "\n", encoding="utf-8")
    first = build(corpus, index, settings, embedder)
    before = {p.text for p in _passages(index)}
    doc.write_text(f"# A long report\n\n{INSERTED}\n\n" + "\n\n".join(abstracts) + "\n",
                   encoding="utf-8")
    second = build(corpus, index, settings, embedder)
    after = _passages(index)
    start = len("# A long report\n\n")
    covering = sum(1 for p in after if p.char_start < start + len(INSERTED))
    new_texts = sum(1 for p in after if p.text not in before)
    return row("paragraph inserted at the top of a long document", second,
               chunks_before=first.chunks, chunks_covering_insert=covering,
               chunks_with_new_text=new_texts,
               target_met=second.embedded <= covering + 2)


def _passages(index: Path) -> list[Chunk]:
    """The long document's chunks in the live generation, with their offsets."""
    return Generation.open_live(index).chunks_of(["long-report.md"])["long-report.md"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=SHARED / "corpus.jsonl")
    parser.add_argument("--index-root", type=Path, default=None)
    parser.add_argument("--edit-share", type=float, default=0.01)
    args = parser.parse_args()
    if not args.source.exists():
        sys.exit(f"SciFact not found at {args.source} (pass --source)")
    settings = IndexerSettings(progress=False)
    embedder = embedder_for(settings)
    rows = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        root = args.index_root or scratch
        corpus, index = make_corpus(scratch / "scifact", args.source), root / "reindex-scifact"
        shutil.rmtree(index, ignore_errors=True)  # the first build must really be the first
        first = build(corpus, index, settings, embedder)
        rows.append(row("first build", first))
        same = build(corpus, index, settings, embedder)
        rows.append(row("re-build, nothing changed", same,
                        speedup=round(first.seconds / same.seconds, 1),
                        target_met=first.seconds >= 20 * same.seconds and same.embedded == 0))
        edited = edit_records(corpus, args.edit_share)
        gen = Generation.open_live(index)
        edited_chunks = sum(len(cs) for cs in gen.chunks_of(sorted(edited)).values())
        one = build(corpus, index, settings, embedder)
        rows.append(row(f"re-build after editing {len(edited)} records "
                        f"({args.edit_share:.0%})", one, edited_records=len(edited),
                        chunks_of_edited_records=edited_chunks,
                        speedup=round(first.seconds / one.seconds, 1),
                        target_met=first.seconds >= 5 * one.seconds
                        and one.embedded <= edited_chunks))
        rows.append(long_document(args.source, scratch, settings, embedder))
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "torch_threads": settings.torch_threads,
                          "load_average": os.getloadavg()},
              "settings": {"chunk_tokens": settings.chunk_tokens,
                           "chunk_overlap": settings.chunk_overlap,
                           "batch_size": settings.batch_size}, "builds": rows}
    out = ROOT / "benchmarks" / "results" / "reindex_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
