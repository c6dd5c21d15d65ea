"""Lexical and hybrid query latency on BEIR SciFact: FTS5's bm25() over the whole table (before)
against BM25 with the caller's own statistics (indexer/store/bm25.py, after), in one run.

    .venv/bin/python benchmarks/lexical_speed.py --index var/scifact-index [--repeat 3]

Needs the partner index of benchmarks/scifact_corpus.py (p1 sees 1 %, p10 10 %, p50 50 %; build
it with `python -m indexer build --corpus DIR --index DIR` on `make_corpus(DIR)`). For the admin
and each partner, every SciFact test query is answered by both engines, alternately, so that
both see the same load:
- lexical: the store call alone (query terms -> top 10 chunk ids and scores);
- hybrid: `search_api.retrieval.search.search` end to end (embedding, dense, lexical at depth
  200, fusion, passages), its lexical retriever swapped for the engine measured.
Also: the time to export the postings from FTS5 (what a build adds, and what the first search of
a generation written before lexical.npz costs), the time to load lexical.npz, its size, and for
the admin (who sees everything) whether the two engines agree. Prints JSON lines and writes
benchmarks/results/lexical_speed.json with the CPU model and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402

import search_api.retrieval.search as search_module  # noqa: E402
from benchmarks.scifact_corpus import load_queries  # noqa: E402
from indexer.store import lexical as fts  # noqa: E402
from indexer.store.bm25 import Postings  # noqa: E402
from indexer.store.layout import LEXICAL  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402
from search_api.access.allowed import AllowedSet  # noqa: E402
from search_api.identity.principal import Principal
from search_api.retrieval.lexical import WEIGHTS, lexical, query_terms  # noqa: E402
from search_api.retrieval.live import LoadedIndex, load_index  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRINCIPALS = ("admin", "p1", "p10", "p50")
Lexical = Callable[[Generation, str, AllowedSet, int], list[tuple[int, float]]]


def fts5_lexical(generation: Generation, query: str, allowed: AllowedSet, k: int,
                 weights: tuple[float, float, float] = WEIGHTS) -> list[tuple[int, float]]:
    """The engine before: FTS5's bm25() with the whole table's statistics, the allowed set
    tested per matching row inside the query (the code of indexer/store/lexical.py until
    per-caller statistics)."""
    if len(allowed) == 0:
        return []
    terms = [t for t in query_terms(query) if t]
    expression = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    if not expression:
        return []
    db = generation._db()
    members = _MEMBERS.get(id(allowed))
    if members is None:
        members = _MEMBERS[id(allowed)] = frozenset(allowed.ids.tolist())
    db.create_function("pks_allowed", 1, members.__contains__, deterministic=True)
    rows = db.execute(
        f"SELECT rowid, -bm25({fts.TABLE}, ?, ?, ?) AS score FROM {fts.TABLE} "
        f"WHERE {fts.TABLE} MATCH ? AND pks_allowed(rowid) ORDER BY score DESC, rowid LIMIT ?",
        (*weights, expression, k)).fetchall()
    return [(int(c), float(s)) for c, s in rows]


_MEMBERS: dict[int, frozenset[int]] = {}  # as before: one hash set per cached allowed set


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def p50(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def measure(loaded: LoadedIndex, allowed: AllowedSet, queries: list[str],
            engines: dict[str, Lexical], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {f"{m}_{e}": [] for m in ("lexical", "hybrid")
                                     for e in engines}
    for round_ in range(repeat):
        for n, query in enumerate(queries):
            order = list(engines.items())
            if (n + round_) % 2:
                order.reverse()  # alternate which engine goes first
            for name, engine in order:
                times[f"lexical_{name}"].append(
                    timed(lambda e=engine, q=query: e(loaded.generation, q, allowed, 10)))
                search_module.lexical = engine  # type: ignore[assignment]
                times[f"hybrid_{name}"].append(timed(
                    lambda q=query: search_module.search(loaded, q, allowed, 10, "hybrid")))
    search_module.lexical = lexical
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    generation = Generation.open_live(args.index)
    db = sqlite3.connect(f"file:{generation.path / 'meta.sqlite'}?mode=ro&immutable=1", uri=True)
    export_s = timed(lambda: fts.postings_of(db)) / 1000
    path = generation.path / LEXICAL
    if not path.is_file():
        raise SystemExit(f"{path} is missing: rebuild the index with this code (an unchanged "
                         "corpus re-embeds nothing)")
    load_s = timed(lambda: Postings.load(path)) / 1000
    loaded = load_index(generation, None, threads=1)
    queries, _ = load_queries("test")
    texts = list(queries.values())
    engines: dict[str, Lexical] = {"before": fts5_lexical, "after": lexical}
    today = date.today()
    rows = []
    for who in PRINCIPALS:
        principal = Principal("bench", None if who == "admin" else who, who == "admin")
        allowed = loaded.access.allowed_for(principal, today)
        for text in texts[:5]:  # warm both engines (caches, first-use loads)
            for engine in engines.values():
                engine(loaded.generation, text, allowed, 10)
        times = measure(loaded, allowed, texts, engines, args.repeat)
        row: dict[str, object] = {"principal": who, "visible_chunks": len(allowed),
                                  "queries": len(texts), "repeat": args.repeat}
        for name, values in times.items():
            row[f"{name}_ms_p50"] = p50(values)
        row["lexical_after_over_before"] = round(
            p50(times["lexical_after"]) / p50(times["lexical_before"]), 3)
        row["hybrid_after_over_before"] = round(
            p50(times["hybrid_after"]) / p50(times["hybrid_before"]), 3)
        if who == "admin":  # everything allowed: the statistics are the same, so the results
            agree, worst = 0, 0.0
            for text in texts:
                old = fts5_lexical(loaded.generation, text, allowed, 10)
                new = lexical(loaded.generation, text, allowed, 10)
                agree += [c for c, _ in old] == [c for c, _ in new]
                worst = max([worst] + [abs(a[1] - b[1]) for a, b in zip(old, new, strict=False)])
            row["admin_top10_identical"] = f"{agree}/{len(texts)}"
            row["admin_max_score_difference"] = worst
        print(json.dumps(row), flush=True)
        rows.append(row)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    summary = {"chunks": int(generation.all_chunk_ids().size),
               "postings_export_seconds": round(export_s, 3),
               "postings_load_seconds": round(load_s, 4),
               "lexical_npz_bytes": path.stat().st_size,
               "meta_sqlite_bytes": (generation.path / "meta.sqlite").stat().st_size,
               "cpu": model, "cores": os.cpu_count(), "load_average": os.getloadavg(),
               "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}), flush=True)
    out = ROOT / "benchmarks" / "results" / "lexical_speed.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
