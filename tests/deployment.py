"""Real deployments for HTTP tests: an owned corpus, keys from the CLI, `serve` on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**ENV, **(env or {})}, timeout=300)


def create_key(index: Path, partner: str | None, name: str) -> str:
    """A key in the index's real key store (tests/test_e2e.py covers `keys create` itself)."""
    from search_api.keys import KeyStore

    return KeyStore(index).create(name, partner, partner is None)[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(index: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve `index` until the block ends; yields the base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "search_api", "serve", "--index", str(index), "--port", str(port)],
        cwd=ROOT, env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        server.kill()
        output = server.stdout.read() if server.stdout else ""
        raise RuntimeError(f"server did not start: {output}")
    try:
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


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
