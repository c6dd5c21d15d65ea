"""A Ray cluster this project did not start, with an application of its own: two nodes of one
CPU on loopback (`ray.cluster_utils.Cluster`, as docs/CLUSTER.md's single-host test runs it),
Serve running there, and an application named "theirs". What an operator's shared cluster
looks like to `serve --ray` and `indexer build --ray`.

It runs as its own process (`python -m tests.foreign_ray`), which holds the only connection to
it, so a test process stays free to join other clusters. Its Ray temp folder is private
(RAY_TMPDIR, which a server under test is given too): its "current cluster" file is the one a
`ray.init()` without an address would join there, and the machine's /tmp/ray is never touched.

Protocol, one line each way: it prints `address HOST:PORT` once ready; then `status` prints one
JSON line (the applications and their states, and what "theirs" answers), `quit` stops it all.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deployment import ENV, ROOT, _session_processes

APP = "theirs"


@dataclass
class ForeignCluster:
    """The running cluster: its address, the env a process under test needs to see it as an
    operator's machine would (its Ray temp folder), and a way to ask it how it is."""

    address: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    def status(self) -> dict[str, Any]:
        """{"applications": {name: status}, "theirs": its answer, "cpus": free CPUs}."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("status\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))


@contextmanager
def foreign_cluster() -> Iterator[ForeignCluster]:
    """The cluster until the block ends; everything it started is gone after."""
    temp = Path(tempfile.mkdtemp(prefix="pks-foreign-", dir="/tmp"))  # short socket paths
    env = {**ENV, "RAY_TMPDIR": str(temp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(temp / "cluster.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen([sys.executable, "-m", "tests.foreign_ray"], cwd=ROOT, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                               text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("address "):
            raise RuntimeError(f"the foreign cluster did not start: {line!r} "
                               f"{(temp / 'cluster.log').read_text()[-3000:]}")
        yield ForeignCluster(line.split()[1], {k: env[k] for k in ("RAY_TMPDIR",)}, process)
    finally:
        with suppress(OSError, ValueError):
            assert process.stdin is not None
            process.stdin.write("quit\n")
            process.stdin.flush()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever of its session is left
            for pid, _ in _session_processes(process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(1 if sig == signal.SIGTERM else 0)
        process.wait(timeout=30)
        log.close()
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def main() -> None:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 100 * 1024 * 1024, "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=100 * 1024 * 1024)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Theirs:
        def __call__(self) -> str:
            return "theirs answers"

    serve.start(proxy_location="Disabled")
    handle = serve.run(Theirs.bind(), name=APP, route_prefix=None)
    print(f"address {cluster.address}", flush=True)
    for command in sys.stdin:
        if command.strip() != "status":
            break
        try:
            answer = handle.remote().result(timeout_s=30)
        except Exception as exc:  # the point of asking: is it still there
            answer = f"{type(exc).__name__}: {exc}"
        print(json.dumps({
            "applications": {name: getattr(app.status, "value", str(app.status))
                             for name, app in serve.status().applications.items()},
            "theirs": answer, "cpus": ray.available_resources().get("CPU", 0.0)}), flush=True)
    serve.shutdown()
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()


def process_tree(root: int) -> list[int]:
    """`root` and every live process descended from it."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
                if fields[0] != "Z":
                    children.setdefault(int(fields[1]), []).append(int(proc.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket these processes listen on (/proc/net/tcp{,6})."""
    inodes: set[str] = set()
    for pid in pids:
        with suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cells = line.split()
                if cells[3] != "0A" or cells[9] not in inodes:  # 0A: LISTEN
                    continue
                address, port = cells[1].split(":")
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                ip = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
                found.add((str(ipaddress.ip_address(ip)), int(port, 16)))
    return found


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
