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
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Send, api_keys, drive, searches, serving  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402

QUERIES = ["battery cell swelling during fast charging", "sensor calibration drift",
           "recycling of cobalt from spent cells", "gene expression in cancer cells",
           "solid electrolyte ionic conductivity", "vitamin D deficiency and risk"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    header = cpu()
    rows = []
    with api_keys(args.index, admin=True, name="request cost") as keys, \
            serving(args.index, {"PKS_RATE_LIMIT_PER_MINUTE": "0"}) as server:
        # a new query each time (numbered), so that no cache of terms or plans answers it
        numbered = [f"{QUERIES[i % len(QUERIES)]} {i}" for i in range(args.requests + 10)]
        admin = [keys.admin or ""]

        def healthz(client: httpx.Client, url: str, i: int) -> httpx.Response:
            return client.get(f"{url}/healthz")

        kinds: dict[str, Send] = {
            "healthz": healthz,
            "unknown key (401)": searches(QUERIES, ["pks_x_y"]),
            **{f"search {mode}": searches(numbered, admin, mode=mode)
               for mode in ("lexical", "dense", "hybrid")}}
        for name, send in kinds.items():
            row = drive(server, 1, args.requests, send, warmup=10)
            row = {"request": name, "server_cpu_ms": row["server_cpu_ms_per_query"],
                   "wall_ms_p50": row["latency_ms_p50"],
                   "unexpected_answers": row["errors"] if name != "unknown key (401)" else 0}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({**header, "rows": rows}))


if __name__ == "__main__":
    main()
