"""A real server keeps answering while builds publish new generations (0 errors for a client
querying in a loop), swaps each one in by itself, and follows a rollback. The server is a real
process; the builds and the rollback run the CLI's main() in this one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from indexer.store.layout import CURRENT
from tests.conftest import make_access_corpus
from tests.deployment import run, serve
from tests.factory import write


def served_generation(url: str, expected: str, within: float = 60) -> str:
    """Wait until /healthz names `expected` (the reload interval is 0.5 s; a loaded CI box is
    slow, hence the generous bound: this is not a timing assertion)."""
    deadline = time.time() + within
    name = ""
    while time.time() < deadline:
        name = httpx.get(f"{url}/healthz", timeout=5).json()["generation"]
        if name == expected:
            return name
        time.sleep(0.2)
    return name


@pytest.mark.slow
def test_queries_during_builds_see_no_error_and_the_server_follows_a_rollback(
        tmp_path: Path) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    assert run("indexer", "build", "--corpus", str(corpus), "--index", str(index)).returncode == 0
    key = run("search_api", "keys", "create", "--index", str(index), "--partner", "alpha"
              ).stdout.strip().splitlines()[-1]
    # The client queries in a tight loop for minutes: no per-key rate limit (429) on this server.
    with serve(index, {"PKS_RELOAD_SECONDS": "0.5", "PKS_RATE_LIMIT_PER_MINUTE": "0"}) as url:
        _queries_during_builds(url, key, corpus, index)


def _queries_during_builds(url: str, key: str, corpus: Path, index: Path) -> None:
    errors: list[str] = []
    answered = [0]
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/search", json={"query": "KESTREL electrolyte batch",
                                                      "top_k": 5}, timeout=30)
                    if r.status_code != 200 or not r.json()["results"]:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    answered[0] += 1
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    loop = threading.Thread(target=client, daemon=True)
    loop.start()
    names = []
    try:
        for n in range(3):
            write(corpus / f"alpha/finding-{n}.txt",
                  f"KESTREL electrolyte batch {10 + n} codename WREN-{n} reached {15 + n} mS/cm.")
            built = run("indexer", "build", "--corpus", str(corpus), "--index", str(index))
            assert built.returncode == 0, built.stderr
            names.append((index / CURRENT).read_text().strip())
            assert served_generation(url, names[-1]) == names[-1]
        stop.set()
        loop.join(60)
        assert errors == [] and answered[0] >= 3

        back = run("indexer", "rollback", "--index", str(index))
        assert back.returncode == 0, back.stderr
        assert served_generation(url, names[-2]) == names[-2]
        hits = httpx.post(f"{url}/v1/search", json={"query": "codename WREN-2", "top_k": 50},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        docs = {r["doc_id"] for r in hits["results"]}
        assert "alpha/finding-1.txt" in docs and "alpha/finding-2.txt" not in docs
    finally:
        stop.set()
