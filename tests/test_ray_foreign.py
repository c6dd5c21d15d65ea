"""`serve --ray` and `indexer build --ray` beside a Ray cluster they did not start (issue 26): a
two-node cluster on loopback with an application of its own ("theirs", tests/foreign_ray.py,
one per session); real server and build processes, nothing mocked.

- `--ray local` runs a private cluster whose every port listens on 127.0.0.1, even where Ray's
  "current cluster" is the foreign one, and leaves that one and its application running;
- `--ray ADDRESS`: servers of two indexes serve side by side under names of their own, their
  replicas' Serve ports on their node's address; one asking for more replicas than the cluster
  has CPUs exits 1 with one line saying so; SIGTERM
  during start-up exits and removes what it had deployed; each server stops deleting exactly
  its own applications; "theirs" answers throughout;
- a port that accepts connections and says nothing: the build and the server exit 1; a join
  that hangs past the handshake is given up after the connect timeout.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests.conftest import make_access_corpus
from tests.deployment import ENV, ROOT, create_key, free_port
from tests.foreign_ray import ForeignCluster, listening, loopback, process_tree

pytestmark = pytest.mark.slow
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
PREFIX = re.compile(r"this server's Serve applications: (pks-[A-Za-z0-9-]+)-\*")


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
            embedder: Embedder) -> tuple[Path, Path]:
    """Two indexes of two shards: the access corpus, and a copy under another name (the same
    generation name, so only each server's own token tells their applications apart)."""
    base = tmp_path_factory.mktemp("foreign")
    first, second = base / "alpha-index", base / "beta-index"
    build(make_access_corpus(base / "corpus"), first,
          settings.model_copy(update={"shards": 2}), embedder)
    shutil.copytree(first, second)
    return first, second


@dataclass
class Serving:
    """A `serve` process: its URL, its output (a file, never an unread pipe)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, limit: float = 180) -> None:
        deadline = time.monotonic() + limit
        while text not in self.output():
            assert self.process.poll() is None, self.output()[-3000:]
            assert time.monotonic() < deadline, f"no {text!r}: {self.output()[-3000:]}"
            time.sleep(0.1)

    def healthy(self, limit: float = 180) -> None:
        deadline = time.monotonic() + limit
        while True:
            assert self.process.poll() is None, self.output()[-3000:]
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, self.output()[-3000:]
            time.sleep(0.3)

    def search(self, key: str) -> list[str]:
        response = httpx.post(f"{self.url}/v1/search", timeout=60,
                              json={"query": "sulfide electrolyte KESTREL", "top_k": 5},
                              headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return [r["doc_id"] for r in response.json()["results"]]

    def stop(self, sig: signal.Signals = signal.SIGTERM, limit: float = 60) -> int:
        """The exit code after `sig`; killed (and failing) if it is not gone within `limit`."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def prefix(self) -> str:
        found = PREFIX.search(self.output())
        assert found, self.output()[-3000:]
        return found[1]


def serve(index: Path, *args: str, env: dict[str, str] | None = None) -> Serving:
    port = free_port()
    log = index.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "search_api", "serve", "--index", str(index), "--port",
             str(port), *args], cwd=ROOT, env={**ENV, **RAY_ENV, **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT)
    return Serving(process, f"http://127.0.0.1:{port}", log)


def ours(cluster: ForeignCluster) -> dict[str, str]:
    return {n: s for n, s in cluster.status()["applications"].items() if n != "theirs"}


def gone(cluster: ForeignCluster, prefix: str, limit: float = 60) -> bool:
    """Whether no application named `prefix`-* is left (Serve deletes in the background)."""
    deadline = time.monotonic() + limit
    while any(name.startswith(prefix) for name in ours(cluster)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def alive_after(pids: list[int], seconds: float) -> list[int]:
    """The processes still running (zombies aside) once `seconds` have passed, or none sooner."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [pid for pid in pids if _running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_ray_local_runs_a_private_cluster_on_loopback_and_leaves_the_other_running(
        foreign_ray: ForeignCluster, indexes: tuple[Path, Path]) -> None:
    before = foreign_ray.status()
    assert before["applications"] == {"theirs": "RUNNING"}, before
    key = create_key(indexes[0], None, "admin")
    # Ray's "current cluster" (RAY_TMPDIR) is the foreign one: `ray.init()` would join it.
    server = serve(indexes[0], "--ray", "local",
                   env={**foreign_ray.env, "PKS_RAY_SHARD_CPUS": "0.5"})
    try:
        server.healthy()
        assert "alpha/electrolyte.txt" in server.search(key)
        tree = process_tree(server.process.pid)
        ports = listening(tree)
        temp = {m for pid in tree for m in re.findall(r"/tmp/pks-ray-[^/ ]+", _cmdline(pid))}
        assert ours(foreign_ray) == {}  # nothing of this server on the foreign cluster
    finally:
        code = server.stop()
    assert code == 0, server.output()[-3000:]
    assert len(tree) > 5 and len(temp) == 1  # its own head, raylet, shard replicas...
    assert ("127.0.0.1", int(server.url.rpartition(":")[2])) in ports
    assert [p for p in ports if not loopback(p[0])] == []  # issue 22: on 127.0.0.1 alone
    assert foreign_ray.status() == before  # "theirs" runs and answers, all CPUs free
    assert alive_after(tree, 30) == []  # its private cluster stops with it (Ray's processes
    assert not Path(temp.pop()).exists()  # take a moment to exit on a loaded machine)


def replicas(application: str) -> list[int]:
    """The processes of an application's Serve replicas (titled ray::ServeReplica:APP...)."""
    return [int(proc.name) for proc in Path("/proc").iterdir() if proc.name.isdigit()
            and _cmdline(int(proc.name)).startswith(f"ray::ServeReplica:{application}")]


def _cmdline(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    return ""


def test_servers_on_a_cluster_they_did_not_start_keep_to_their_own_applications(
        foreign_ray: ForeignCluster, indexes: tuple[Path, Path]) -> None:
    first, second = indexes
    keys = {index: create_key(index, None, "admin") for index in indexes}
    env = {"PKS_RAY_ADDRESS": foreign_ray.address, "PKS_RAY_SHARD_CPUS": "0.25"}
    started = [serve(first, env=env), serve(second, env=env)]
    # 2 shards x 4 replicas x 1 CPU on a cluster of 2 CPUs: refused before anything is deployed
    too_many = serve(second, "--replicas", "4", env={**env, "PKS_RAY_SHARD_CPUS": "1"})
    try:
        assert too_many.process.wait(timeout=120) == 1
        errors = [line for line in too_many.output().splitlines() if line.startswith("error")]
        assert len(errors) == 1 and re.fullmatch(
            rf"error: the Ray cluster at {foreign_ray.address} has [0-9.]+ free CPUs \(2 in "
            r"all, 2 node\(s\)\); 2 shards x 4 replicas x 1 CPU \(PKS_RAY_SHARD_CPUS\) need 8: "
            r"add nodes, or lower --replicas or PKS_RAY_SHARD_CPUS \(docs/CLUSTER.md\)",
            errors[0]), errors
        assert "Traceback" not in too_many.output()

        a, b = started
        a.healthy()
        b.healthy()
        generation = Generation.open_live(first).name
        names = ours(foreign_ray)
        for server, index in ((a, "alpha-index"), (b, "beta-index")):
            assert server.prefix().startswith(f"pks-{index}-")
            assert {n: s for n, s in names.items() if n.startswith(server.prefix())} == {
                f"{server.prefix()}-{generation}-{shard}": "RUNNING" for shard in (0, 1)}
        assert len(names) == 4 and not any(n.startswith(too_many.prefix()) for n in names)
        assert a.search(keys[first]) == b.search(keys[second])
        # Their replica's Serve port listens on every interface (Ray Serve's own choice); this
        # server's replicas keep theirs to their node's address, 127.0.0.1 here (issue 22).
        assert [p for p in listening(replicas("theirs")) if not loopback(p[0])]
        mine = replicas(a.prefix())
        assert len(mine) == 2 and [p for p in listening(mine) if not loopback(p[0])] == []

        # SIGTERM while a third server deploys: it exits and removes what it had deployed.
        third = serve(first, env=env)
        started.append(third)
        third.wait_for("deploying 2 shards")
        assert third.stop(limit=30) == 1
        assert third.output().rstrip().endswith(
            "error: stopped by SIGTERM during start-up; what it had deployed on Ray was removed")
        assert gone(foreign_ray, third.prefix())

        assert a.stop() == 0
        assert gone(foreign_ray, a.prefix())
        assert set(ours(foreign_ray)) == {n for n in names if n.startswith(b.prefix())}
        assert "alpha/electrolyte.txt" in b.search(keys[second])
    finally:
        for server in [*started, too_many]:
            server.stop()
    assert gone(foreign_ray, b.prefix())
    status = foreign_ray.status()
    assert status["applications"] == {"theirs": "RUNNING"}
    assert status["theirs"] == "theirs answers"


@contextmanager
def silent_port() -> Iterator[str]:
    """host:port of a socket that accepts every connection and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in [*held, listener]:
            conn.close()


def test_a_port_that_is_no_ray_head_is_exit_1_for_the_build_and_the_server(
        tmp_path: Path, indexes: tuple[Path, Path]) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    timeout = {"PKS_RAY_CONNECT_TIMEOUT_SECONDS": "3"}
    with silent_port() as address:
        with open(tmp_path / "build.log", "wb") as out:
            builder = subprocess.Popen(
                [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index",
                 str(index), "--ray", address], cwd=ROOT, env={**ENV, **RAY_ENV, **timeout},
                stdout=out, stderr=subprocess.STDOUT)
        server = serve(indexes[0], "--ray", address, env=timeout)
        try:
            assert builder.wait(timeout=60) == 1
            assert server.process.wait(timeout=60) == 1
        finally:
            for process in (builder, server.process):
                process.kill()
                process.wait()
    said = f"error: no Ray head answered at {address} within 3 s (PKS_RAY_CONNECT_TIMEOUT_SECONDS)"
    built = (tmp_path / "build.log").read_text()
    assert said in built and "nothing was published" in built and "Traceback" not in built
    assert said in server.output() and "Traceback" not in server.output()
    assert not (index / "CURRENT").exists()


HANGING = """
import sys
from indexer.cluster.join import ClusterUnavailable, Node, _connect
try:
    _connect(sys.argv[1], 3, [Node("0", "127.0.0.1", True, 1.0)])
except ClusterUnavailable as exc:
    print(exc)
"""


def test_a_join_that_hangs_after_the_handshake_is_given_up(foreign_ray: ForeignCluster) -> None:
    """The backstop behind the handshake: told to publish this machine's address
    (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1), Ray rewrites 127.0.0.1 to it, where this loopback-only
    cluster never answers, and retries with no limit. join() keeps a loopback address on
    loopback; whatever else hangs in `ray.init` is given up after the connect timeout."""
    ran = subprocess.run([sys.executable, "-c", HANGING, foreign_ray.address], cwd=ROOT,
                         env={**ENV, **RAY_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout == (
        f"Ray did not join the cluster at {foreign_ray.address} within 3 s "
        "(PKS_RAY_CONNECT_TIMEOUT_SECONDS): its head advertises 127.0.0.1, which every node and "
        "this machine must reach (the head's --node-ip-address; on one host "
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, docs/CLUSTER.md)\n")
