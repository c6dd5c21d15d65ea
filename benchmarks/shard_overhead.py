"""What serving shards on Ray costs per request: the same corpus as one index and as N shards
(`serve --ray local`), the same queries over HTTP on loopback, one client, requests to the two
servers interleaved so that both see the same machine load.

    .venv/bin/python benchmarks/shard_overhead.py [--corpus corpora/demo] [--shards 2]
        [--requests 200] [--json benchmarks/results/shard_overhead.json]

Needs the `cluster` extra (`pip install -e '.[cluster]'`). Builds both indexes under
var/bench/shard-overhead, an admin key and a partner key in each, and reports p50/p95 per mode
and principal, with the sharded/single ratio. The answers are checked equal as they come.

CPU per request (the wall clock of a loaded machine also counts waiting for a core): of each
server process, of the shard replicas, and of the rest of the private Ray cluster (GCS, raylet,
Serve's controller: mostly its own timers), from /proc over each mode's requests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, Server, api_keys, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.build import build  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from indexer.store.reader import Generation  # noqa: E402


def cpu_split(server: Server) -> dict[str, float]:
    """CPU seconds so far of the server process, its Ray Serve replicas, and every other
    process it started (a private Ray cluster's own)."""
    split = {"server": 0.0, "replicas": 0.0, "ray": 0.0}
    for pid, (command, seconds) in server.cpu_by_process().items():
        split["server" if pid == server.pid else
              "replicas" if "ServeReplica" in command else "ray"] += seconds
    return split


QUERIES = ["cell cycling results", "sensor calibration drift", "battery management firmware",
           "steering committee minutes", "pilot line coating", "state of charge estimation",
           "field trial data", "charter amendment signature", "thermal runaway", "roadmap"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora/demo")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks/results/shard_overhead.json")
    args = parser.parse_args()
    base = ROOT / "var/bench/shard-overhead"
    shutil.rmtree(base, ignore_errors=True)
    settings = IndexerSettings(progress=False)
    single, sharded = base / "single", base / "sharded"
    build(args.corpus, single, settings)
    build(args.corpus, sharded, settings.model_copy(update={"shards": args.shards}))
    partner = Generation.open_live(single).partners[0]
    unlimited = {"PKS_RATE_LIMIT_PER_MINUTE": "0"}
    rows = []
    with ExitStack() as stack:
        keys = {index: stack.enter_context(api_keys(index, [partner], admin=True))
                for index in (single, sharded)}
        servers = [stack.enter_context(serving(single, unlimited)),
                   stack.enter_context(serving(sharded, {
                       **unlimited, "PKS_RAY_ADDRESS": "local", "PKS_RAY_SHARD_CPUS": "0.5",
                       "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}))]
        clients = [stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
                   for server in servers]
        for mode in ("dense", "hybrid", "lexical"):
            for who in ("admin", partner):
                millis: dict[str, list[float]] = {"single": [], "sharded": []}
                cpu_before = [cpu_split(server) for server in servers]
                for at in range(args.requests):
                    query = QUERIES[at % len(QUERIES)]
                    got = []
                    for (label, index), client in zip((("single", single), ("sharded", sharded)),
                                                      clients, strict=True):
                        token = keys[index].admin if who == "admin" else \
                            keys[index].by_partner[partner]
                        started = time.perf_counter()
                        response = client.post(
                            "/v1/search", json={"query": query, "top_k": 10, "mode": mode},
                            headers={"Authorization": f"Bearer {token}"})
                        millis[label].append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, response.text
                        got.append([(r["chunk_id"], r["score"]) for r in
                                    response.json()["results"]])
                    assert [c for c, _ in got[0]] == [c for c, _ in got[1]], (mode, who, query)
                cpu_after = [cpu_split(server) for server in servers]
                row = {"mode": mode, "who": "admin" if who == "admin" else "partner",
                       **{f"{label}_p50_ms": round(statistics.median(m), 2)
                          for label, m in millis.items()},
                       **{f"{label}_p95_ms": round(sorted(m)[int(0.95 * len(m))], 2)
                          for label, m in millis.items()}}
                row["p50_ratio"] = round(row["sharded_p50_ms"] / row["single_p50_ms"], 2)
                row["goal_p50_ms"] = round(1.3 * row["single_p50_ms"] + 4, 2)
                for label, before, after in zip(("single", "sharded"), cpu_before, cpu_after,
                                                strict=True):
                    for part in ("server", "replicas", "ray") if label == "sharded" else \
                            ("server",):
                        row[f"{label}_{part}_cpu_ms"] = round(
                            (after[part] - before[part]) * 1000 / args.requests, 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
    header = {**cpu(), "load_average_end": round(os.getloadavg()[0], 2),
              "corpus": str(args.corpus), "shards": args.shards,
              "requests": args.requests, "chunks": Generation.open_live(single).counts()[1]}
    write_results(args.json, header, rows)

if __name__ == "__main__":
    main()
