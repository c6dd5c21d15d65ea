"""Server CPU per request, by kind of request: where a search's CPU goes besides the embedding.

    .venv/bin/python benchmarks/request_cost.py --index var/bench/scifact100-index [--requests 150]

Starts the real server (`python -m search_api serve`, no rate limit) and sends one kind of
request at a time from one client, sequentially, with an admin key: GET /healthz (HTTP alone),
a search with an unknown key (HTTP, body, key check), then searches in lexical, dense and
hybrid mode. For each it prints the server's CPU time per request (its process and workers,
from /proc: unlike the wall clock, barely moved by other load on the machine) and the wall
time, with the CPU model and the load average.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.api_throughput import server_cpu_seconds, start_server  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from search_api.identity.keys import KeyStore  # noqa: E402

QUERIES = ["battery cell swelling during fast charging", "sensor calibration drift",
           "recycling of cobalt from spent cells", "gene expression in cancer cells",
           "solid electrolyte ionic conductivity", "vitamin D deficiency and risk"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    store = KeyStore(args.index)
    record, key = store.create("request cost", None, True)
    server, url = start_server(args.index, {"PKS_RATE_LIMIT_PER_MINUTE": "0"})
    rows = [cpu()]
    try:
        with httpx.Client(timeout=60) as client:
            def search(mode: str) -> Callable[[int], object]:
                return lambda i: client.post(
                    f"{url}/v1/search", json={"query": f"{QUERIES[i % len(QUERIES)]} {i}",
                                              "mode": mode},
                    headers={"Authorization": f"Bearer {key}"})

            kinds: dict[str, Callable[[int], object]] = {
                "healthz": lambda i: client.get(f"{url}/healthz"),
                "unknown key (401)": lambda i: client.post(
                    f"{url}/v1/search", json={"query": "x"},
                    headers={"Authorization": "Bearer pks_x_y"}),
                "search lexical": search("lexical"), "search dense": search("dense"),
                "search hybrid": search("hybrid")}
            for name, send in kinds.items():
                for i in range(10):
                    send(i)  # warm-up
                before, started = server_cpu_seconds(server.pid), time.perf_counter()
                for i in range(args.requests):
                    send(i)
                rows.append({"request": name, "server_cpu_ms": round(
                    (server_cpu_seconds(server.pid) - before) * 1000 / args.requests, 2),
                    "wall_ms": round((time.perf_counter() - started) * 1000 / args.requests, 2)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.revoke(record.key_id)
    print(json.dumps({**rows[0], "rows": rows[1:]}))


if __name__ == "__main__":
    main()
