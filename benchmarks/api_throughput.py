"""Throughput and latency of the real HTTP server under concurrent clients, on loopback.

    .venv/bin/python benchmarks/api_throughput.py --index var/bench/scifact-index \
        [--threads 1 2] [--clients 4] [--requests 400]

For each thread setting (torch and FAISS threads per query, as PKS_TORCH_THREADS and
PKS_FAISS_THREADS), starts `python -m search_api serve` on a free loopback port, sends a bounded
number of SciFact queries from concurrent clients with a partner key, and stops the server.
Prints JSON rows and writes benchmarks/results/api_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scifact_corpus import load_queries  # noqa: E402
from search_api.keys import KeyStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(index: Path, threads: int, clients: int, requests: int, key: str,
        queries: list[str]) -> dict[str, object]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PKS_TORCH_THREADS": str(threads),
           "PKS_FAISS_THREADS": str(threads), "PKS_RELOAD_SECONDS": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "search_api", "serve", "--index", str(index), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=30) as client:
            for q in queries[:10]:  # warm-up
                client.post(f"{url}/v1/search", json={"query": q, "top_k": 10}, headers=headers)

        shared = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=clients))

        def one(i: int) -> float:  # keep-alive connections, as a chat bot's client would use
            started = time.perf_counter()
            r = shared.post(f"{url}/v1/search", headers=headers,
                            json={"query": queries[i % len(queries)], "top_k": 10})
            assert r.status_code == 200, r.text
            return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - started
        shared.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"threads_per_query": threads, "clients": clients, "requests": requests,
            "qps": round(requests / elapsed, 1),
            "latency_ms_p50": round(statistics.median(latencies), 1),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    queries = list(load_queries("test")[0].values())
    store = KeyStore(args.index)
    record, key = store.create("benchmark", "p50", False)
    rows = []
    try:
        for threads in args.threads:
            row = run(args.index, threads, args.clients, args.requests, key, queries)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        store.revoke(record.key_id)
    out = ROOT / "benchmarks" / "results" / "api_throughput.json"
    out.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
