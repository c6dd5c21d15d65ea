"""What partitioning the BM25 postings by access group costs: export time, bytes, and a lexical
query's CPU time per share of the index, at a million chunks and 50 partners.

    .venv/bin/python benchmarks/partitioned_postings.py [--chunks 1000000] \
        [--index var/bench/postings-1m] [--queries 200] [--json OUT]

The index is serve_workers.py's synthetic layout (24 words a chunk from a 50,000-word Zipf
vocabulary, 10 chunks a document, 60 rules: 50 of one partner each, 10 for every partner, so
each partner sees about 18 % of the chunks), written through the store's writer with 8-d
vectors (only the lexical index is measured). The script uses only what the store offered
before and after the change (`lexical.postings_of`, `Postings.stats` / `search` / `save`), so
the same script run from a checkout of the commit before (issue 22) measures the old term-major
postings over the same meta.sqlite: run both and compare. Figures: the export (FTS5 -> postings,
in process), lexical.npz's bytes and its arrays', and per principal (a partner, the admin, a
partner within a folder filter that scatters its chunks) the median and p95 CPU time of one
query's statistics plus search (four words of frequency ranks 300-3000, as serve_workers.py
sends). Prints JSON with the CPU and the load average.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from benchmarks.serve_workers import PARTNERS, PER_DOC, QUERIES, RULES, VOCABULARY, word  # noqa: E402
from indexer.store import lexical  # noqa: E402
from indexer.store.layout import META_DB, live_generation_dir  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402
from indexer.store.records import Chunk, Grant, StoredDocument  # noqa: E402
from indexer.store.writer import GenerationWriter  # noqa: E402

DIM = 8
WEIGHTS = (1.0, 0.5, 0.0)


def synthetic(index: Path, n: int) -> None:
    """serve_workers.py's documents and rules, with 8-d vectors and no IVF."""
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(1, 2**53, size=int(n * 1.01)))[:n]
    rng.shuffle(ids)
    writer = GenerationWriter(index, DIM, {"model": "none", "dim": str(DIM)}, PARTNERS,
                              ann_min_rows=2**62)
    zipf = 1 / np.arange(1, VOCABULARY + 1)
    zipf /= zipf.sum()
    vocabulary = [word(r) for r in range(VOCABULARY)]
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        ranks = rng.choice(VOCABULARY, size=(stop - start, 24), p=zipf)
        vectors = rng.standard_normal((stop - start, DIM)).astype(np.float32)
        chunks = []
        for at in range(start, stop):
            doc = at // PER_DOC
            text = " ".join(vocabulary[r] for r in ranks[at - start])
            chunks.append(Chunk(int(ids[at]), f"doc-{doc:07d}", at % PER_DOC, None, 0,
                                len(text), text))
            if at % PER_DOC == 0:
                rule = doc % RULES + 1
                who = frozenset(PARTNERS) if rule > len(PARTNERS) else \
                    frozenset({PARTNERS[rule - 1]})
                writer.add_document(StoredDocument(f"doc-{doc:07d}", f"d{rule}/{doc:07d}.md",
                                                   f"Document {doc}", f"{doc:064x}"),
                                    Grant(rule, who, None, None))
        writer.add_chunks(chunks, vectors)
        print(f"written {stop} chunks", file=sys.stderr, flush=True)
    writer.publish({"documents": n // PER_DOC, "chunks": n, "synthetic": True}, keep=1)


def allowed_sets(generation: Generation) -> dict[str, np.ndarray]:
    """A partner's chunks, everything (the admin), and the partner's chunks of every other
    document of its own rule (a folder filter's scattered set)."""
    p00 = np.sort(np.concatenate([g.chunk_ids for g in generation.grant_rows()
                                  if g.partner == "p00"]))
    own = np.sort(np.concatenate([ids for path, ids in _paths(generation)
                                  if path.startswith("d1/") and int(path[3:10]) % 2 == 0]))
    return {"partner_p00": p00, "admin": generation.all_chunk_ids(), "p00_within_half_own": own}


def _paths(generation: Generation) -> list[tuple[str, np.ndarray]]:
    found = generation.chunk_paths()
    if isinstance(found, dict):  # since issue 22: per access group
        return [pair for pairs in found.values() for pair in pairs]
    return list(found)


def cpu_ms(call) -> float:  # type: ignore[no-untyped-def]
    started = time.thread_time()
    call()
    return (time.thread_time() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--index", type=Path, default=ROOT / "var/bench/postings-1m")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "partitioned_postings.json")
    args = parser.parse_args()
    if live_generation_dir(args.index) is None:
        started = time.perf_counter()
        synthetic(args.index, args.chunks)
        print(f"written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    generation = Generation.open_live(args.index)
    db = sqlite3.connect(f"file:{generation.path / META_DB}?mode=ro&immutable=1", uri=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    postings = lexical.postings_of(db)
    export = {"export_s": round(time.perf_counter() - started, 1),
              "export_cpu_s": round(time.process_time() - cpu_started, 1)}
    saved = args.index.parent / f"{args.index.name}-postings.npz"
    postings.save(saved)
    with np.load(saved) as data:
        arrays = {name: int(data[name].nbytes) for name in data.files}
    size = saved.stat().st_size
    saved.unlink()
    analyze = lexical.Analyzer(lexical.tokenizer_of(db))
    rows = []
    for who, allowed in allowed_sets(generation).items():
        allowed.setflags(write=False)
        times = []
        for i in range(args.queries):
            tokens = analyze(QUERIES[i % len(QUERIES)].split())
            times.append(cpu_ms(lambda t=tokens, a=allowed: postings.search(
                t, a, 10, WEIGHTS, postings.stats(t, a))))
        rows.append({"principal": who, "share": round(allowed.size / args.chunks, 3),
                     "cpu_ms_p50": round(statistics.median(times[10:]), 3),
                     "cpu_ms_p95": round(float(np.percentile(times[10:], 95)), 3)})
        print(json.dumps(rows[-1]), flush=True)
    header = {**cpu(), "chunks": args.chunks, "partners": len(PARTNERS), "rules": RULES,
              **export, "lexical_npz_bytes": size,
              "arrays_bytes": arrays}
    print(json.dumps(header), flush=True)
    write_results(args.json, header, rows)


if __name__ == "__main__":
    main()
