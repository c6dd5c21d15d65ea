"""What a nightly re-index costs on BEIR SciFact, measured in seconds and in chunks embedded.

    .venv/bin/python benchmarks/reindex_speed.py [--source corpus.jsonl] [--index-root DIR]
        [--shapes-only]

Three builds of SciFact laid out as 100 JSONL shards (benchmarks/scifact_corpus.py, read from
../shared/eval in place): the first build; a re-build with nothing changed (target: >= 20x
faster); a re-build after editing 1 % of the records, picked at random across shards (target:
>= 5x faster, only their chunks embedded). Then a long document of 60 SciFact abstracts as
paragraphs, as Markdown, text, Word and PDF, gets one paragraph inserted, deleted or edited at
its top, middle and end (benchmarks/edits.py); target: chunks embedded <= the chunks the edit
touches + 2, in every case. One loaded model serves every build, so seconds exclude model
loading. Prints JSON and writes benchmarks/results/reindex_speed.json (reindex_shapes.json with
--shapes-only).
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

from benchmarks.edits import (  # noqa: E402
    FORMATS,
    OPS,
    changed_chunks,
    edited,
    load,
    write_document,
)
from benchmarks.machine import cpu  # noqa: E402
from benchmarks.scifact_corpus import SHARDS, SHARED, make_corpus  # noqa: E402
from indexer.build import BuildReport, build  # noqa: E402
from indexer.chunk.chunker import Chunk  # noqa: E402
from indexer.embed.embedder import Embedder, embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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


def document_shapes(source: Path, scratch: Path, settings: IndexerSettings,
                    embedder: Embedder, paragraphs: int = 60) -> list[dict[str, object]]:
    """Each format, each one-paragraph edit (benchmarks/edits.py): chunks embedded by the
    re-build against the chunks the edit touches (target: <= touched + 2) and against the
    document's chunk count. After each edit the original is put back (and built) first."""
    abstracts = [json.loads(line)["text"] for line in
                 source.read_text(encoding="utf-8").splitlines()[:paragraphs]]
    rows = []
    for fmt in FORMATS:
        corpus, index = scratch / f"shape-{fmt}", scratch / f"shape-{fmt}-index"
        corpus.mkdir()
        (corpus / "access.yaml").write_text(
            "partners: [p]\nrules:\n  - match: '**'\n    allow: [p]\n")
        path = write_document(corpus / f"long-report.{fmt}", "A long report", abstracts)
        first = build(corpus, index, settings, embedder)
        original, chunks_before = load(path), _chunks(index, path.name)
        for op in OPS:
            write_document(path, "A long report", edited(abstracts, op))
            report = build(corpus, index, settings, embedder)
            chunks_after = _chunks(index, path.name)
            changed = changed_chunks(original, load(path), chunks_before, chunks_after)
            rows.append(row(f"{fmt}: {op}", report, format=fmt, edit=op,
                            chunks_before=len(chunks_before), chunks_touched=changed,
                            embedded_share=round(report.embedded / len(chunks_after), 3),
                            speedup=round(first.seconds / report.seconds, 1),
                            target_met=report.embedded <= changed + 2))
            write_document(path, "A long report", abstracts)
            build(corpus, index, settings, embedder)
    return rows


def _chunks(index: Path, doc_id: str) -> list[Chunk]:
    """One document's chunks in the live generation, with their offsets."""
    return Generation.open_live(index).chunks_of([doc_id])[doc_id]


def scifact_rebuilds(source: Path, scratch: Path, root: Path, edit_share: float,
                     settings: IndexerSettings, embedder: Embedder) -> list[dict[str, object]]:
    """The first build of SciFact, an unchanged re-build and one after editing some records."""
    rows = []
    corpus, index = make_corpus(scratch / "scifact", source), root / "reindex-scifact"
    shutil.rmtree(index, ignore_errors=True)  # the first build must really be the first
    first = build(corpus, index, settings, embedder)
    rows.append(row("first build", first))
    same = build(corpus, index, settings, embedder)
    rows.append(row("re-build, nothing changed", same,
                    speedup=round(first.seconds / same.seconds, 1),
                    target_met=first.seconds >= 20 * same.seconds and same.embedded == 0))
    edited_ids = edit_records(corpus, edit_share)
    gen = Generation.open_live(index)
    edited_chunks = sum(len(cs) for cs in gen.chunks_of(sorted(edited_ids)).values())
    one = build(corpus, index, settings, embedder)
    rows.append(row(f"re-build after editing {len(edited_ids)} records ({edit_share:.0%})", one,
                    edited_records=len(edited_ids), chunks_of_edited_records=edited_chunks,
                    speedup=round(first.seconds / one.seconds, 1),
                    target_met=first.seconds >= 5 * one.seconds
                    and one.embedded <= edited_chunks))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=SHARED / "corpus.jsonl")
    parser.add_argument("--index-root", type=Path, default=None)
    parser.add_argument("--edit-share", type=float, default=0.01)
    parser.add_argument("--shapes-only", action="store_true",
                        help="only the one-paragraph edits of long documents (minutes, not the "
                             "three SciFact builds)")
    args = parser.parse_args()
    if not args.source.exists():
        sys.exit(f"SciFact not found at {args.source} (pass --source)")
    settings = IndexerSettings(progress=False)
    embedder = embedder_for(settings)
    rows = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if not args.shapes_only:
            rows += scifact_rebuilds(args.source, scratch, args.index_root or scratch,
                                     args.edit_share, settings, embedder)
        rows += document_shapes(args.source, scratch, settings, embedder)
    shapes = [r for r in rows if "edit" in r]
    result = {"machine": {"cpu": cpu()["cpu"], "cpus": os.cpu_count(),
                          "python": platform.python_version(),
                          "torch_threads": settings.torch_threads,
                          "load_average": os.getloadavg()},
              "settings": {"chunk_tokens": settings.chunk_tokens,
                           "chunk_overlap": settings.chunk_overlap,
                           "chunk_window_tokens": settings.chunk_window_tokens,
                           "batch_size": settings.batch_size},
              "shapes_target_met": f"{sum(bool(r['target_met']) for r in shapes)} of "
                                   f"{len(shapes)}",
              "builds": rows}
    name = "reindex_shapes.json" if args.shapes_only else "reindex_speed.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
