"""Where one round of a sharded server on Ray goes: the same question sent to two Serve
applications at once (as search_api/cluster/ingress.py sends it), answered with a hybrid query's
payload (200 dense and 200 lexical pairs), through each way of calling a replica.

    .venv/bin/python benchmarks/ray_round.py [--rounds 300] [--json FILE]

- `serve-default`: Serve's own defaults, as the server called its shards before issue 25: a
  handle call by reference (Ray's actor call, a streamed reply), a synchronous method run by
  the replica on a thread pool under a user-code event loop of its own thread;
- `grpc`: the same method over Serve's gRPC transport (`handle.options(_by_reference=False)`);
- `grpc-replica-loop`: gRPC, and a coroutine run on the replica's own event loop
  (RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=0): what the server does now;
- `grpc-replica-loop-ids-N`: the same, with an allowed set of N ids in the arguments instead of
  its key (what sending the set with every question would cost; 1,000,000 ids are 8 MB, over
  gRPC's 4 MB message limit: the row says the error);
- `ray-actors`: two plain Ray actors and `ray.get`: what Ray itself costs, without Serve.

Per variant: the round's p50 and p90 (ms), and the CPU per round of this process (the caller)
and of the two replicas (from /proc). A private cluster on loopback (indexer/cluster/join.py),
half a CPU per replica as in shard_overhead.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, cpu_seconds, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.cluster.join import join  # noqa: E402

PAIRS = [(int(i), 0.5) for i in range(200)]


class Shard:
    """Answers like a shard: a hybrid query's two ranked lists."""

    def pid(self) -> int:
        return os.getpid()

    def ask(self, key: Any, vector: np.ndarray, k: int) -> tuple[list, list]:
        return PAIRS[:k], PAIRS[:k]

    async def ask_async(self, key: Any, vector: np.ndarray, k: int) -> tuple[list, list]:
        return PAIRS[:k], PAIRS[:k]


def measure(round_once: Callable[[], object], pids: list[int], rounds: int) -> dict[str, float]:
    for _ in range(30):
        round_once()
    millis = []
    caller, replicas = time.process_time(), sum(cpu_seconds(p) for p in pids)
    for _ in range(rounds):
        started = time.perf_counter()
        round_once()
        millis.append((time.perf_counter() - started) * 1000)
    caller = (time.process_time() - caller) * 1000 / rounds
    replicas = (sum(cpu_seconds(p) for p in pids) - replicas) * 1000 / rounds
    return {"p50_ms": round(statistics.median(millis), 2),
            "p90_ms": round(float(np.percentile(millis, 90)), 2),
            "caller_cpu_ms": round(caller, 2), "replicas_cpu_ms": round(replicas, 2),
            "load_average": round(os.getloadavg()[0], 2)}


def serve_variant(name: str, rounds: int, vector: np.ndarray) -> dict[str, float]:
    from ray import serve

    by_grpc, on_loop = name.startswith("grpc"), "replica-loop" in name
    env = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"} if on_loop else {}
    deployment = serve.deployment(Shard).options(
        name="shard", ray_actor_options={"num_cpus": 0.5, "runtime_env": {"env_vars": env}})
    apps = [f"round-{name}-{i}" for i in range(2)]
    handles = serve.run_many([serve.RunTarget(deployment.bind(), name=app, route_prefix=None)
                              for app in apps])
    pids = [h.pid.remote().result() for h in handles]
    if by_grpc:
        handles = [h.options(_by_reference=False) for h in handles]
    key: Any = "0" * 32  # an allowed set's key, as the server sends it
    if "-ids-" in name:
        key = np.arange(int(name.rsplit("-", 1)[1]), dtype=np.int64)
    method = "ask_async" if on_loop else "ask"

    def round_once() -> list[Any]:
        pending = [getattr(h, method).remote(key, vector, 200) for h in handles]
        return [p.result() for p in pending]

    try:
        return measure(round_once, pids, rounds)
    finally:
        for app in apps:
            serve.delete(app)


def actor_variant(rounds: int, vector: np.ndarray) -> dict[str, float]:
    import ray

    actors = [ray.remote(num_cpus=0.5)(Shard).remote() for _ in range(2)]
    pids = ray.get([a.pid.remote() for a in actors])
    try:
        return measure(lambda: ray.get([a.ask.remote("0" * 32, vector, 200) for a in actors]),
                       pids, rounds)
    finally:
        for actor in actors:
            ray.kill(actor)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/ray_round.json")
    args = parser.parse_args()
    joined = join("local", 60)
    from ray import serve

    rows = []
    try:
        serve.start(proxy_location="Disabled")
        vector = np.random.default_rng(0).random(384, dtype=np.float32)
        for name in ("serve-default", "grpc", "grpc-replica-loop",
                     "grpc-replica-loop-ids-10000", "grpc-replica-loop-ids-1000000"):
            try:
                rows.append({"variant": name, **serve_variant(name, args.rounds, vector)})
            except Exception as error:  # a set of 1M ids is over gRPC's 4 MB message limit
                details = getattr(error, "details", None)  # gRPC's own words
                said = details() if callable(details) else str(error)
                rows.append({"variant": name, "error": str(said)[:300]})
            print(rows[-1], flush=True)
        rows.append({"variant": "ray-actors", **actor_variant(args.rounds, vector)})
        print(rows[-1], flush=True)
    finally:
        serve.shutdown()
        joined.leave()
    write_results(args.json, {**cpu(), "rounds": args.rounds}, rows)


if __name__ == "__main__":
    main()
