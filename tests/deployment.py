"""Real deployments for tests: the CLI, `serve` on loopback, the app in process, an owned corpus.

The one place tests start the service's processes or assemble it in process, so every test
runs it the way an operator does (`python -m ...`, settings from the environment) or exactly as
`serve` assembles it (Services.open -> create_app).
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from search_api.retrieval.live import IndexHolder
    from search_api.state.services import Services

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS` as a real process: where the process is the point (a kill, a lock held
    by another process, what a fresh interpreter loads, the stdio transport)."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**ENV, **(env or {})}, timeout=600)


@dataclass(frozen=True)
class Ran:
    """What a command did: the fields of subprocess.CompletedProcess that tests read."""

    returncode: int
    stdout: str
    stderr: str


def run(*args: str, env: dict[str, str] | None = None) -> Ran:
    """`python -m MODULE ARGS...` in this process: the same `main()`, exit code, stdout and
    stderr (its log lines included, as the CLI configures logging), with `env` set for the
    call. A subprocess would prove nothing more here and would load the model again; models
    are shared per configuration (tests/conftest.py)."""
    main = importlib.import_module(f"{args[0]}.__main__").main
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level, saved_env = root.handlers[:], root.level, dict(os.environ)
    root.handlers = []  # as in a fresh process: main()'s basicConfig installs its own
    os.environ.update(env or {})
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args[1:]))
            except SystemExit as exc:  # argparse refusing the arguments
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for handler in root.handlers:
            handler.flush()
        root.handlers, root.level = saved_handlers, saved_level
        os.environ.clear()
        os.environ.update(saved_env)
    return Ran(code, out.getvalue(), err.getvalue())


@contextmanager
def app_client(index: Path, *, holder: IndexHolder | None = None,
               today: Callable[[], date] = lambda: date(2026, 11, 23),
               services: Callable[[Services], Services] = lambda s: s,
               address: str = "testclient", **settings: Any) -> Iterator[TestClient]:
    """The app over `index` in process, assembled as `serve` does; `holder` shares a loaded
    index (and its model) between tests, `services` may swap one component (a failing audit);
    requests come from the client `address` (an SSO proxy's, say)."""
    from search_api.http.app import create_app
    from search_api.settings import ApiSettings
    from search_api.state.services import Services

    opened = Services.open(ApiSettings(index=index, reload_seconds=0, **settings),
                           holder=holder, today=today)
    with TestClient(create_app(services(opened)), client=(address, 50000)) as client:
        yield client


def create_key(index: Path, partner: str | None, name: str) -> str:
    """A key in the index's real key store (tests/test_e2e.py covers `keys create` itself)."""
    from search_api.identity.keys import KeyStore

    return KeyStore(index).create(name, partner, partner is None)[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running `python -m search_api serve`: its URL, its process and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class RayHead:
    """A Ray head the tests started: its address, and its processes (one session)."""

    address: str
    session: int

    def processes(self, title: str) -> list[int]:
        """Ids of this cluster's processes whose title starts with `title` ("ray::...")."""
        return [pid for pid, cmd in _session_processes(self.session) if cmd.startswith(title)]


@contextmanager
def ray_cluster(cpus: int = 2) -> Iterator[RayHead]:
    """A Ray head on loopback (`ray start --head --block`) with `cpus` CPUs and a small object
    store, until the block ends. Everything it started, workers included, lives in the session
    it leads, and is gone when the block ends."""
    temp = Path(tempfile.mkdtemp(prefix="pks-ray-", dir="/tmp"))  # Ray's socket paths are short
    port = free_port()
    log_path = temp / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
             f"--port={port}", f"--num-cpus={cpus}", "--object-store-memory=300000000",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
            cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while "Ray runtime started" not in log_path.read_text() and head.poll() is None:
            if time.time() > deadline:
                raise RuntimeError(f"the Ray head did not start: {log_path.read_text()}")
            time.sleep(0.5)
        if head.poll() is not None:
            raise RuntimeError(f"the Ray head exited: {log_path.read_text()}")
        yield RayHead(f"127.0.0.1:{port}", head.pid)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # every process of its session
            for pid, _ in _session_processes(head.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2 if sig == signal.SIGTERM else 0)
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _session_processes(session: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes of one session."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) == session and fields[0] != "Z":
                found.append((int(proc.name),
                              (proc / "cmdline").read_text().replace("\0", " ").strip()))
        except (OSError, ValueError, IndexError):
            pass  # gone meanwhile
    return found


@contextmanager
def server(index: Path, env: dict[str, str] | None = None, *args: str) -> Iterator[Server]:
    """Serve `index` until the block ends (extra `args` for serve, e.g. --workers 2).

    The server's output goes to a file beside the index, never to an unread pipe: a fuzz run
    logs thousands of lines, and a full pipe would block the server mid-request.
    """
    port = free_port()
    log_path = index.parent / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "search_api", "serve", "--index", str(index),
             "--port", str(port), *args],
            cwd=ROOT, env={**ENV, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError(f"server did not start: {log_path.read_text()}")
    try:
        yield Server(url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serve(index: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve `index` until the block ends; yields the base URL."""
    with server(index, env) as running:
        yield running.url


# The access corpus of tests/conftest.py, with owners: delta owns the shared documents (which
# everyone receives), alpha its own, beta the joint work (which alpha receives too); gamma owns
# nothing.
OWNED_MANIFEST = """\
partners: [alpha, beta, gamma, delta]
rules:
  - match: "shared/**"
    allow: "*"
    owner: delta
  - match: "alpha/**"
    allow: [alpha]
    owner: alpha
  - match: "beta/**"
    allow: [beta]
  - match: "joint/**"
    allow: [alpha, beta]
    until: 2099-12-31
    owner: beta
  - match: "gamma/**"
    allow: [gamma]
    until: 2020-01-01
  - match: "drafts/**"
    allow: []
"""
OWNED_BY = {
    "delta": {"shared/overview.md", "gloss-soc", "gloss-fbg"},
    "alpha": {"alpha/electrolyte.txt", "alpha/pilot-line.pdf"},
    "beta": {"joint/integration.md"},
    "gamma": set(),
}


def make_owned_corpus(root: Path) -> Path:
    from tests.conftest import make_access_corpus
    from tests.factory import write

    make_access_corpus(root)
    write(root / "access.yaml", OWNED_MANIFEST)
    return root


BROKEN_PDF = "alpha/broken.pdf"
NEW_DOC = "alpha/batch-11.txt"


def make_build_history(base: Path) -> tuple[Path, Path]:
    """An index with a history, built with the CLI as cron does (so every run is recorded): a
    clean first build of the owned corpus (exit 0); a second that adds a document and skips a
    broken PDF (exit 3, live); a third that fails (exit 2: a corpus that does not exist).
    Returns (corpus, index)."""
    from tests.factory import write

    corpus, index = make_owned_corpus(base / "corpus"), base / "index"
    args = ("--index", str(index), "--chunk-tokens", "64", "--chunk-overlap", "8", "--quiet")
    first = run("indexer", "build", "--corpus", str(corpus), *args)
    assert first.returncode == 0, first.stderr
    write(corpus / NEW_DOC, "KESTREL batch 11 reached 16.1 mS/cm after a longer anneal.")
    write(corpus / BROKEN_PDF, b"%PDF-1.4 cut off in the middle of the copy")
    second = run("indexer", "build", "--corpus", str(corpus), *args)
    assert second.returncode == 3, second.stderr
    failed = run("indexer", "build", "--corpus", str(base / "no-such-corpus"), *args)
    assert failed.returncode == 2, failed.stderr
    return corpus, index
