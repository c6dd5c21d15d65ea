"""The one harness of the benchmarks that serve: start the real server, make keys, drive clients,
write results. Each benchmark says only what it measures and against what.

    with serving(index, {"PKS_RATE_LIMIT_PER_MINUTE": "0"}) as server, \\
            api_keys(index, partners, admin=True) as keys:
        row = drive(server, clients=8, requests=800, send=searches(queries, keys.partner_tokens))

- `serving`: `python -m search_api serve` on a free loopback port, as an operator starts it,
  returned once every worker process has said "Application startup complete"; stopped (SIGINT,
  then SIGKILL after a minute) on the way out, whatever happened.
- `api_keys`: keys made in the index's key store for the partners (and an admin), revoked on the
  way out.
- `drive`: `requests` requests from `clients` concurrent keep-alive clients; latencies, errors
  (every answer that is not 200), queries/s, and the server's CPU time per request (user +
  system of the server and its workers: on a shared machine the wall clock also counts time
  spent waiting for a core, the CPU time does not).
- `write_results`: the JSON a benchmark writes to benchmarks/results/, with the CPU it ran on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STARTED = "Application startup complete"

Send = Callable[[httpx.Client, str, int], httpx.Response]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parents() -> dict[int, int]:
    """Every live process's parent, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (the workers of `serve --workers N`)."""
    return [child for child, parent in parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """`pid`'s children, theirs, and so on: with `serve --ray local`, the private cluster's
    processes (GCS, raylet) and the raylet's workers (the Serve controller, the replicas)."""
    parent_of, found, frontier = parents(), [], [pid]
    while frontier:
        frontier = [child for child, parent in parent_of.items() if parent in frontier]
        found.extend(frontier)
    return found


def command_line(pid: int) -> str:
    """What `ps` shows for `pid` (Ray names its workers, e.g. ray::ServeReplica:APP:shard)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
        errors="replace").strip()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return [self.pid, *children(self.pid)]

    def cpu_seconds(self) -> float:
        """CPU time of the server and its live workers."""
        total = 0.0
        for pid in self.pids():
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue  # a worker that just exited
        return total

    def cpu_by_process(self) -> dict[int, tuple[str, float]]:
        """CPU time of the server and of every process it started, directly or not, each
        with its command line: where a request's CPU goes when the server talks to others."""
        found = {}
        for pid in [self.pid, *descendants(self.pid)]:
            try:
                found[pid] = (command_line(pid), cpu_seconds(pid))
            except OSError:
                continue  # exited
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@contextmanager
def serving(index: Path, env: Mapping[str, str] | None = None, *, workers: int = 1,
            args: Sequence[str] = (), timeout: float = 600) -> Iterator[Server]:
    """The real server of `index` on a free loopback port, with the environment given (on top of
    offline model loading and no reloads), until the block ends."""
    port = free_port()
    log = index.parent / f"serve-{index.name}-{port}.log"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PKS_RELOAD_SECONDS": "0",
                   "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "search_api", "serve", "--index", str(index), "--port",
             str(port), *(["--workers", str(workers)] if workers != 1 else []), *args],
            cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while log.read_text(errors="replace").count(STARTED) < workers:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
        log.unlink(missing_ok=True)


@dataclass
class Keys:
    """Keys made for one benchmark: one per partner, and an admin's if asked for."""

    by_partner: dict[str, str] = field(default_factory=dict)
    admin: str | None = None

    @property
    def partner_tokens(self) -> list[str]:
        return list(self.by_partner.values())


@contextmanager
def api_keys(index: Path, partners: Sequence[str] = (), *, admin: bool = False,
             name: str = "benchmark") -> Iterator[Keys]:
    """Keys in the index's own key store (as `keys create` makes them), revoked afterwards."""
    from search_api.identity.keys import KeyStore

    store = KeyStore(index)
    made = Keys()
    records = []
    try:
        for partner in partners:
            record, token = store.create(name, partner, False)
            records.append(record)
            made.by_partner[partner] = token
        if admin:
            record, made.admin = store.create(f"{name} (admin)", None, True)
            records.append(record)
        yield made
    finally:
        for record in records:
            store.revoke(record.key_id)


def searches(queries: Sequence[str], tokens: Sequence[str], **body: object) -> Send:
    """POST /v1/search, query i with key i (both in turn), `body` added to each request."""

    def send(client: httpx.Client, url: str, i: int) -> httpx.Response:
        return client.post(f"{url}/v1/search",
                           headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                           json={"query": queries[i % len(queries)], "top_k": 10, **body})

    return send


def latency_summary(millis: Sequence[float], prefix: str = "latency_ms") -> dict[str, float]:
    return {f"{prefix}_p50": round(statistics.median(millis), 2),
            f"{prefix}_p95": round(float(np.percentile(millis, 95)), 2),
            f"{prefix}_p99": round(float(np.percentile(millis, 99)), 2)}


def drive(server: Server, clients: int, requests: int, send: Send,
          warmup: int = 20, timeout: float = 60) -> dict[str, object]:
    """`requests` requests from `clients` concurrent keep-alive clients, after `warmup` sent one
    by one (every code path loaded, plans cached). Every answer that is not 200 is an error."""
    client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=clients))
    errors: list[str] = []

    def one(i: int) -> float:
        started = time.perf_counter()
        try:
            response = send(client, server.url, i)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
        return (time.perf_counter() - started) * 1000

    try:
        for i in range(min(warmup, requests)):
            one(i)
        errors.clear()
        started, cpu_before = time.perf_counter(), server.cpu_seconds()
        client_before = time.process_time()
        with ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - started
        server_ms = (server.cpu_seconds() - cpu_before) * 1000 / requests
        client_ms = (time.process_time() - client_before) * 1000 / requests
    finally:
        client.close()
    return {"clients": clients, "requests": requests, "errors": len(errors),
            "qps": round(requests / elapsed, 1), **latency_summary(latencies),
            "server_cpu_ms_per_query": round(server_ms, 2),
            "client_cpu_ms_per_query": round(client_ms, 2),
            "first_error": errors[0] if errors else None}


def write_results(path: Path, header: Mapping[str, object], rows: object) -> None:
    """`{**header, "rows": rows}` as indented JSON (the header names the CPU: machine.cpu())."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
