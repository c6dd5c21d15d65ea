"""Memory and throughput of `python -m search_api serve --workers N` on a 1M-chunk index.

    .venv/bin/python benchmarks/serve_workers.py --chunks 1000000 --index var/bench/synthetic-1m \
        [--workers 1 2] [--clients 8 1] [--requests 800] [--json OUT]

The index is synthetic, written through the store's own writer (no text is embedded): clustered
normalised 384-d vectors as in benchmarks/filtered_search.py, chunk texts of 24 words drawn from
a 50,000-word vocabulary with Zipf frequencies (so a query's words match a share of the chunks
as words of real text do, for the lexical retriever), 10 chunks per document, documents shared
by access rule among 50 partners (each partner sees its own rule's documents and the shared
ones, about 18 % of the index), recorded with the packaged model so
the server embeds real queries. For each worker count the real server is started on loopback;
after a warm-up (every partner's allowed set planned, the admin's full scan once) it reports
each process's resident (RSS), proportional (PSS) and shared memory from /proc/PID/smaps_rollup,
then sends searches from 8 and 1 concurrent keep-alive clients with the partners' keys in turn.
PSS splits each shared page among the processes mapping it, so the PSS total is what the server
costs the host. The clients run on the same cores as the server. Prints JSON rows with the CPU
model, its flags of interest and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.filtered_search import DIM, clustered  # noqa: E402
from benchmarks.harness import ROOT, api_keys, children, drive, searches, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.embed.embedder import model_reference  # noqa: E402
from indexer.settings import default_model  # noqa: E402
from indexer.store.layout import VECTORS, live_generation_dir  # noqa: E402
from indexer.store.records import Chunk, Grant, StoredDocument  # noqa: E402
from indexer.store.writer import GenerationWriter  # noqa: E402

PARTNERS = tuple(f"p{i:02d}" for i in range(50))
RULES = 60  # rules 1-50: one partner each; 51-60: every partner
PER_DOC = 10
VOCABULARY = 50_000
WORDS_PER_CHUNK = 24


def word(rank: int) -> str:
    """A made-up word per frequency rank (letters only, so FTS5 keeps it whole)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = ""
    rank += 26 * 26
    while rank:
        rank, digit = divmod(rank, 26)
        out += letters[digit]
    return "w" + out


# Queries of four words of ranks 300-3000: each word is in about 0.2-2 % of the chunks.
QUERIES = [" ".join(word(int(r)) for r in np.random.default_rng(q).integers(300, 3000, 4))
           for q in range(64)]


def synthetic(index: Path, n: int) -> None:
    """Write and publish a generation of `n` chunks through the store's writer."""
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(1, 2**53, size=int(n * 1.01)))[:n]
    rng.shuffle(ids)
    centers = np.random.default_rng(1).standard_normal((256, DIM)).astype(np.float32)
    writer = GenerationWriter(index, DIM, {"model": model_reference(default_model()),
                                           "dim": str(DIM)}, PARTNERS)
    zipf = 1 / np.arange(1, VOCABULARY + 1)
    zipf /= zipf.sum()
    vocabulary = [word(r) for r in range(VOCABULARY)]
    block = 50_000
    for start in range(0, n, block):
        stop = min(n, start + block)
        vectors = clustered(stop - start, start, centers)
        ranks = rng.choice(VOCABULARY, size=(stop - start, WORDS_PER_CHUNK), p=zipf)
        chunks = []
        for at in range(start, stop):
            doc = at // PER_DOC
            words = " ".join(vocabulary[r] for r in ranks[at - start])
            chunks.append(Chunk(int(ids[at]), f"doc-{doc:07d}", at % PER_DOC, None, 0,
                                len(words), words))
            if at % PER_DOC == 0:
                rule = doc % RULES + 1
                who = frozenset(PARTNERS) if rule > len(PARTNERS) else \
                    frozenset({PARTNERS[rule - 1]})
                writer.add_document(StoredDocument(f"doc-{doc:07d}", f"d/{doc:07d}.md",
                                                   f"Document {doc}", f"{doc:064x}"),
                                    Grant(rule, who, None, None))
        writer.add_chunks(chunks, vectors)
        print(f"written {stop} chunks", file=sys.stderr, flush=True)
    writer.publish({"documents": n // PER_DOC, "chunks": n, "synthetic": True}, keep=1)


def memory(pid: int) -> dict[str, int]:
    """kB from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return {"rss_mb": fields["Rss"] // 1024, "pss_mb": fields["Pss"] // 1024,
            "shared_mb": (fields["Shared_Clean"] + fields["Shared_Dirty"]) // 1024,
            "private_mb": (fields["Private_Clean"] + fields["Private_Dirty"]) // 1024,
            # the process's own heap (model, ids, caches) apart from mapped files (the vectors)
            "anonymous_mb": fields["Anonymous"] // 1024,
            "file_mb": (fields["Rss"] - fields["Anonymous"]) // 1024}


def processes(parent: int) -> list[int]:
    """The server and its workers (its children that map the vectors file)."""
    mapping = []
    for child in children(parent):
        try:
            if VECTORS in Path(f"/proc/{child}/maps").read_text():
                mapping.append(child)
        except OSError:
            continue
    return [parent, *mapping]


def account(index: Path) -> dict[str, int]:
    """Where a worker's own (anonymous) memory goes, structure by structure, in this process:
    MB added by loading the generation, its access index, every partner's allowed set, their
    vector plans and the lexical retriever's postings."""
    from datetime import date

    from indexer.store.reader import Generation
    from search_api.access.allowed import AccessIndex
    from search_api.identity.principal import Principal

    def anonymous() -> int:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) // 1024
        return 0

    steps, before = {}, anonymous()
    generation = Generation.open_live(index)
    steps["generation_ids_mb"], before = anonymous() - before, anonymous()
    access = AccessIndex(generation)
    steps["access_index_mb"], before = anonymous() - before, anonymous()
    sets = [access.allowed_for(Principal("k", p, False), date.today()) for p in PARTNERS]
    steps["allowed_sets_mb"], before = anonymous() - before, anonymous()
    for allowed in sets:
        generation.vectors.plan_for(allowed.ids)
    steps["vector_plans_mb"], before = anonymous() - before, anonymous()
    generation.lexical_index()
    steps["lexical_postings_mb"] = anonymous() - before
    steps["chunks_per_partner"] = len(sets[0])
    return steps


def warm(url: str, keys: list[str]) -> None:
    """Every key a few times over 8 connections, so that each worker has most likely planned
    each partner's allowed set (a worker takes whichever connection it accepts)."""
    client = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=8))

    def one(i: int) -> None:
        client.post(f"{url}/v1/search", json={"query": QUERIES[i % len(QUERIES)]},
                    headers={"Authorization": f"Bearer {keys[i]}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(len(keys))))
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--index", type=Path, default=ROOT / "var/bench/synthetic-1m")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 1])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "serve_workers.json")
    parser.add_argument("--account", action="store_true",
                        help="only say where one worker's own memory goes, in this process")
    args = parser.parse_args()
    if live_generation_dir(args.index) is None:
        synthetic(args.index, args.chunks)
    if args.account:
        print(json.dumps({**cpu(), "account": account(args.index)}))
        return
    header = {**cpu(), "chunks": args.chunks}
    print(json.dumps(header), flush=True)
    rows = []
    with api_keys(args.index, PARTNERS, admin=True) as keys:
        for workers in args.workers:
            with serving(args.index, {"PKS_RATE_LIMIT_PER_MINUTE": "0"},
                         workers=workers) as server:
                pids = processes(server.pid)
                warm(server.url, [*keys.partner_tokens * 4, *[keys.admin or ""] * 8])
                row: dict[str, object] = {"workers": workers, "processes": len(pids)}
                warmed = {str(p): memory(p) for p in pids}
                row["memory_after_warmup"] = warmed
                row["pss_total_mb"] = sum(m["pss_mb"] for m in warmed.values())
                row["load"] = [drive(server, c, args.requests,
                                     searches(QUERIES, keys.partner_tokens), warmup=0)
                               for c in args.clients]
                loaded = {str(p): memory(p) for p in pids}
                row["memory_after_load"] = loaded
                row["pss_total_after_load_mb"] = sum(m["pss_mb"] for m in loaded.values())
                row["load_average"] = round(os.getloadavg()[0], 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
    write_results(args.json, header, rows)

if __name__ == "__main__":
    main()
