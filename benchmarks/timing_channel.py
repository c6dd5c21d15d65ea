"""Does the time of a search tell which words hidden documents contain? The held-out probe of
issue 22, over HTTP: queries of words that occur only in documents the caller may not see
against queries of words that occur nowhere, in interleaved pairs on one keep-alive connection.

    .venv/bin/python benchmarks/timing_channel.py [--chunks 60000] [--pairs 400] \
        [--modes lexical hybrid] [--index var/bench/timing-60000] [--json OUT]

The index is synthetic, written through the store's own writer (as benchmarks/serve_workers.py
writes its million chunks; vectors are clustered noise, the packaged model embeds the queries):
documents of 10 chunks, shared among 10 partners by access rule (one rule per partner, one
rule for every partner, and documents no rule covers, for admins only). Every chunk holds words
of a common Zipf vocabulary and words of its rule's own vocabulary: a partner's code names,
English words the model's tokenizer keeps whole, each in about 2 % of that rule's chunks, so
each hidden word has a long list of hidden postings.
The probing key is partner p00's. Its hidden-only words are drawn from the other rules' own
vocabularies (every one checked: the admin's lexical search finds it, p00's finds nothing); its
absent words come from the same random process and are checked to match nothing for the admin.
Each query has six words. Every word is searched once before timing starts, so no first-use
cost (a cache being filled) is counted for either kind.

For each mode, `pairs` pairs are timed: one hidden-only and one absent query, in random order
within the pair, one after the other on the same connection, with the rate limit off. The two
samples of latencies are compared with the Mann-Whitney U test (normal approximation with the
tie correction; scipy computes U). z > 0: hidden-only queries are slower. |z| < 3.5 is the goal
(issue 22); before per-group postings this probe gave z = 19.5 (lexical) and 5.0 (hybrid).
Prints JSON with the CPU and the load average, and writes benchmarks/results/timing_channel.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import string
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.filtered_search import DIM, clustered  # noqa: E402
from benchmarks.harness import ROOT, api_keys, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.embed.embedder import model_reference  # noqa: E402
from indexer.settings import default_model  # noqa: E402
from indexer.store.layout import live_generation_dir  # noqa: E402
from indexer.store.records import Chunk, Grant, StoredDocument  # noqa: E402
from indexer.store.writer import GenerationWriter  # noqa: E402
from search_api.retrieval.lexical import STOP_WORDS  # noqa: E402

PARTNERS = tuple(f"p{i:02d}" for i in range(10))
PROBER = PARTNERS[0]
RULES = len(PARTNERS) + 2  # 1-10: one partner each; 11: every partner; 12: no rule (admins)
PER_DOC = 10
COMMON = 20_000  # the Zipf vocabulary every rule shares
COMMON_PER_CHUNK = 20
OWN = 100  # words of a rule's own vocabulary (its code names)
OWN_PER_CHUNK = 2
WORDS_PER_QUERY = 6
POOL = 48  # distinct words of each kind the queries draw from
# A folder filter of some of p00's documents (paths r1/NNNNNNN.md, every 12th document): its
# chunks then lie in hundreds of runs of rows, and before per-group postings every hidden
# word's postings were searched once per run (the strengthened probe).
SCATTER = "r1/*[048].md"


def common_word(rank: int) -> str:
    """The shared vocabulary's word of a frequency rank (letters only: FTS5 keeps it whole)."""
    out, rank = "", rank + 26 * 26
    while rank:
        rank, digit = divmod(rank, 26)
        out += string.ascii_lowercase[digit]
    return "w" + out


def code_names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """`n` new English words of 5-9 letters that the embedding model's tokenizer keeps whole
    (one word piece each, from its own vocab.txt): the one process both the hidden and the
    absent words come from, so the two kinds of query cost the model the same."""
    vocab = Path(default_model()) / "vocab.txt"
    words = sorted({w for w in vocab.read_text().split()
                    if w.isalpha() and w.isascii() and w.islower() and 5 <= len(w) <= 9
                    and w not in STOP_WORDS and not w.startswith("w")} - taken)
    picked = [str(w) for w in rng.choice(words, n, replace=False)]
    taken.update(picked)
    return picked


def vocabularies(seed: int = 3) -> tuple[dict[int, list[str]], list[str]]:
    """Each rule's own words, and words that occur nowhere (drawn the same way)."""
    rng, taken = np.random.default_rng(seed), set[str]()
    own = {rule: code_names(rng, OWN, taken) for rule in range(1, RULES + 1)}
    return own, code_names(rng, 4 * POOL, taken)


def synthetic(index: Path, n: int) -> None:
    """Write and publish a generation of `n` chunks through the store's writer."""
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(1, 2**53, size=int(n * 1.01)))[:n]
    rng.shuffle(ids)
    centers = np.random.default_rng(1).standard_normal((256, DIM)).astype(np.float32)
    writer = GenerationWriter(index, DIM, {"model": model_reference(default_model()),
                                           "dim": str(DIM)}, PARTNERS)
    zipf = 1 / np.arange(1, COMMON + 1)
    zipf /= zipf.sum()
    common = [common_word(r) for r in range(COMMON)]
    own, _ = vocabularies()
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        vectors = clustered(stop - start, start, centers)
        ranks = rng.choice(COMMON, size=(stop - start, COMMON_PER_CHUNK), p=zipf)
        picks = rng.integers(0, OWN, size=(stop - start, OWN_PER_CHUNK))
        chunks = []
        for at in range(start, stop):
            doc = at // PER_DOC
            rule = doc % RULES + 1
            words = [common[r] for r in ranks[at - start]] + \
                [own[rule][p] for p in picks[at - start]]
            text = " ".join(words)
            chunks.append(Chunk(int(ids[at]), f"doc-{doc:07d}", at % PER_DOC, None, 0,
                                len(text), text))
            if at % PER_DOC == 0:
                grant = Grant(None, frozenset(), None) if rule == RULES else \
                    Grant(rule, frozenset(PARTNERS) if rule == RULES - 1 else
                          frozenset({PARTNERS[rule - 1]}), None)
                writer.add_document(StoredDocument(f"doc-{doc:07d}", f"r{rule}/{doc:07d}.md",
                                                   f"Document {doc}", f"{doc:064x}"), grant)
        writer.add_chunks(chunks, vectors)
        print(f"written {stop} chunks", file=sys.stderr, flush=True)
    writer.publish({"documents": n // PER_DOC, "chunks": n, "synthetic": True}, keep=1)


def found(client: httpx.Client, url: str, key: str, words: list[str]) -> int:
    response = client.post(f"{url}/v1/search", headers={"Authorization": f"Bearer {key}"},
                           json={"query": " ".join(words), "top_k": 10, "mode": "lexical"})
    response.raise_for_status()
    return len(response.json()["results"])


def word_pools(client: httpx.Client, url: str, prober: str, admin: str) -> tuple[list[str],
                                                                                  list[str]]:
    """POOL hidden-only words (in the other rules' documents, checked: the admin finds each,
    the prober none) and POOL absent words (checked: the admin finds none)."""
    own, nowhere = vocabularies()
    hidden_rules = [r for r in range(2, RULES + 1) if r != RULES - 1]  # not p00's, not shared
    candidates = [w for i in range(OWN) for r in hidden_rules for w in own[r][i:i + 1]]
    hidden = [w for w in candidates
              if found(client, url, admin, [w]) and not found(client, url, prober, [w])][:POOL]
    absent = [w for w in nowhere if not found(client, url, admin, [w])][:POOL]
    if len(hidden) < POOL or len(absent) < POOL:
        raise RuntimeError(f"only {len(hidden)} hidden-only and {len(absent)} absent words")
    return hidden, absent


def mann_whitney_z(first: list[float], second: list[float]) -> tuple[float, float]:
    """z of the Mann-Whitney U of `first` against `second` (normal approximation with the tie
    correction; > 0: `first` tends to be larger), and its two-sided p."""
    from scipy.stats import mannwhitneyu, rankdata

    n1, n2 = len(first), len(second)
    u = float(mannwhitneyu(first, second, alternative="two-sided").statistic)
    ranks = rankdata(first + second)
    _, ties = np.unique(ranks, return_counts=True)
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - float((ties ** 3 - ties).sum()) / (n * (n - 1)))
    z = (u - n1 * n2 / 2) / math.sqrt(variance)
    return z, math.erfc(abs(z) / math.sqrt(2))


def probe(client: httpx.Client, url: str, key: str, mode: str, hidden: list[str],
          absent: list[str], pairs: int, seed: int, words: int,
          within: str) -> dict[str, object]:
    """`pairs` interleaved pairs (random order within each); latencies in ms, medians and z."""
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {"hidden": [], "absent": []}
    pools = {"hidden": hidden, "absent": absent}

    def one(kind: str) -> float:
        query = [str(w) for w in rng.choice(pools[kind], words, replace=False)]
        started = time.perf_counter()
        body = {"query": " ".join(query), "top_k": 10, "mode": mode,
                **({"within": [within]} if within else {})}
        response = client.post(f"{url}/v1/search", headers={"Authorization": f"Bearer {key}"},
                               json=body)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or (mode == "lexical" and response.json()["results"]):
            raise RuntimeError(f"{kind} query {query}: {response.status_code} {response.text}")
        return elapsed

    for _ in range(20):  # warm this mode's path
        one("hidden"), one("absent")
    for _ in range(pairs):
        order = ("hidden", "absent") if rng.random() < 0.5 else ("absent", "hidden")
        for kind in order:
            times[kind].append(one(kind))
    z, p = mann_whitney_z(times["hidden"], times["absent"])
    return {"mode": mode, "pairs": pairs, "words_per_query": words, "within": within or None,
            "hidden_median_ms": round(statistics.median(times["hidden"]), 4),
            "absent_median_ms": round(statistics.median(times["absent"]), 4),
            "median_difference_us": round(1000 * (statistics.median(times["hidden"])
                                                  - statistics.median(times["absent"])), 1),
            "z": round(z, 2), "p": float(f"{p:.3g}"), "channel_closed": abs(z) < 3.5,
            "load_average": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=60_000)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--modes", nargs="+", default=["lexical", "hybrid"],
                        choices=["lexical", "hybrid", "dense"])
    parser.add_argument("--index", type=Path, default=None,
                        help="default: var/bench/timing-CHUNKS (written when missing)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--words", type=int, nargs="+", default=[WORDS_PER_QUERY, 24],
                        help="words per query (one probe per count, folder filter and mode)")
    parser.add_argument("--within", nargs="+", default=["", SCATTER],
                        help="folder filters of the probing queries ('': none); the default "
                             "second one scatters the prober's chunks into hundreds of runs")
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "timing_channel.json")
    args = parser.parse_args()
    index = args.index or ROOT / "var" / "bench" / f"timing-{args.chunks}"
    if live_generation_dir(index) is None:
        synthetic(index, args.chunks)
    header = {**cpu(), "chunks": args.chunks, "partners": len(PARTNERS)}
    print(json.dumps(header), flush=True)
    rows = []
    with api_keys(index, [PROBER], admin=True, name="timing channel") as keys, \
            serving(index, {"PKS_RATE_LIMIT_PER_MINUTE": "0"}) as server, \
            httpx.Client(timeout=60) as client:
        assert keys.admin is not None
        hidden, absent = word_pools(client, server.url, keys.by_partner[PROBER], keys.admin)
        for word in hidden + absent:  # every word seen once: no first use is timed
            found(client, server.url, keys.by_partner[PROBER], [word])
        probes = [(m, w, f) for m in args.modes for w in args.words for f in args.within]
        for number, (mode, words, within) in enumerate(probes):
            row = probe(client, server.url, keys.by_partner[PROBER], mode, hidden, absent,
                        args.pairs, args.seed + number, words, within)
            print(json.dumps(row), flush=True)
            rows.append(row)
    write_results(args.json, {**header, "hidden_words": hidden[:8], "absent_words": absent[:8]},
                  rows)


if __name__ == "__main__":
    main()
