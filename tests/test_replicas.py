"""Many processes and hosts, with real parts: two replicas (`python -m search_api serve`) on
loopback with separate index directories and one PostgreSQL database, generations shipped to
both with `python -m indexer ship`, and one server of two worker processes.

Checked: keys created and revoked through either replica's CLI hold on both from the next
request; the audit of each shows the requests of both; a new generation shipped to both while
a client queries both in a loop costs 0 errors and is served by both within
PKS_RELOAD_SECONDS; a killed replica leaves the other answering. Workers map one vectors file
and each swaps a new generation in.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.layout import VECTORS
from tests.conftest import make_access_corpus
from tests.deployment import run, server
from tests.factory import write

pytestmark = pytest.mark.slow  # starts servers and a database
# The servers embed queries with PyTorch: it starts in half the time of compiling the model for
# OpenVINO, and which backend embeds is beside the point here.
SERVER = {"PKS_RELOAD_SECONDS": "0.5", "PKS_EMBED_BACKEND": "torch"}
QUERY = {"query": "HERON prototype swelling during fast charging", "top_k": 5}
NEW_DOC = ("shared/heron-update.md", "# HERON update\n\nThe HERON prototype now detects 0.1 mm "
           "swelling during fast charging at 4C, twice as early as before.")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def created_key(index: Path, env: dict[str, str], *who: str) -> tuple[str, str]:
    """(key id, key) made through a replica's CLI."""
    made = run("search_api", "keys", "create", "--index", str(index), *who, env=env)
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[2], made.stdout.strip().splitlines()[-1]


def generation_of(url: str) -> str:
    return httpx.get(f"{url}/healthz", timeout=5).json()["generation"]


class Loop:
    """A client querying every replica in turn until stopped: every request's start time,
    replica and status kept, and every answer but 200 listed as an error."""

    def __init__(self, urls: list[str], key: str) -> None:
        self.urls, self.key = urls, key
        self.errors: list[str] = []
        self.sent: list[tuple[float, str, int]] = []  # (monotonic start, url, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    started = time.monotonic()
                    try:
                        r = client.post(f"{url}/v1/search", json=QUERY, headers=auth(self.key))
                        self.sent.append((started, url, r.status_code))
                        if r.status_code != 200:
                            self.errors.append(f"{url}: {r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{url}: {exc!r}")

    def since(self, moment: float) -> Counter[str]:
        """Requests per replica started after `moment`."""
        return Counter(url for started, url, _ in self.sent if started > moment)

    def __enter__(self) -> Loop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def wait_for(check, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_two_replicas_share_keys_and_audit_and_follow_shipped_generations(
        tmp_path: Path, database_url: str, settings: IndexerSettings,
        embedder: Embedder) -> None:
    corpus, built = make_access_corpus(tmp_path / "corpus"), tmp_path / "built"
    build(corpus, built, settings, embedder)
    a, b = tmp_path / "host-a" / "index", tmp_path / "host-b" / "index"
    for replica in (a, b):
        assert run("indexer", "ship", "--index", str(built), "--to", str(replica)).returncode == 0
    env = {"PKS_DATABASE_URL": database_url, **SERVER}
    with ExitStack() as stack, ThreadPoolExecutor(2) as starting:  # both start at once
        one, two = starting.map(lambda index: stack.enter_context(server(index, env)), (a, b))
        alpha_id, alpha = created_key(a, env, "--partner", "alpha")   # through A's CLI
        _, admin = created_key(b, env, "--admin")                     # through B's CLI
        for url in (one.url, two.url):
            assert httpx.post(f"{url}/v1/search", json=QUERY, headers=auth(alpha)).status_code \
                == 200

        # The audit of either replica holds the searches made on both.
        for url in (one.url, two.url):
            events = httpx.get(f"{url}/v1/admin/audit", headers=auth(admin)).json()["events"]
            assert [e["key_id"] for e in events if e["surface"] == "search"] == [alpha_id] * 2

        # A new generation shipped to both while a client queries both: 0 errors.
        before = generation_of(one.url)
        with Loop([one.url, two.url], alpha) as loop:
            assert wait_for(lambda: min(loop.since(0).values(), default=0) >= 2, 60)
            write(corpus / NEW_DOC[0], NEW_DOC[1])
            new = build(corpus, built, settings, embedder).generation
            for replica in (a, b):
                assert run("indexer", "ship", "--index", str(built), "--to",
                           str(replica)).returncode == 0
            assert wait_for(lambda: {generation_of(one.url), generation_of(two.url)} == {new},
                            10), "a replica did not pick up the shipped generation"
            live = time.monotonic()  # both serve the new one: the loop goes on over it
            assert wait_for(lambda: min(loop.since(live).values(), default=0) >= 2, 60)
        assert new != before and loop.errors == []
        for url in (one.url, two.url):
            found = httpx.post(f"{url}/v1/search", json=QUERY, headers=auth(alpha)).json()
            assert found["results"][0]["doc_id"] == NEW_DOC[0]

        # Revoked through A's CLI while a client queries B: no request B receives after the
        # revocation returned is answered.
        with Loop([two.url], alpha) as on_b:
            assert wait_for(lambda: len(on_b.sent) >= 5, 60)
            assert run("search_api", "keys", "revoke", alpha_id, "--index", str(a),
                       env=env).returncode == 0
            revoked = time.monotonic()
            assert wait_for(lambda: on_b.since(revoked)[two.url] >= 20, 60)
        after = [status for started, _, status in on_b.sent if started > revoked]
        print(f"revoked through A's CLI: B got {len(after)} requests with the key after the "
              f"revocation returned and answered {after.count(200)} of them")  # pytest -s
        # 401, then 429 once the refused sign-ins from this address pass their limit
        assert len(after) >= 20 and after[0] == 401 and set(after) <= {401, 429}

        # One replica killed: the other goes on answering.
        one.process.send_signal(signal.SIGKILL)
        one.process.wait(timeout=30)
        answers = [httpx.post(f"{two.url}/v1/search", json=QUERY,
                              headers=auth(admin)).status_code for _ in range(10)]
        assert answers == [200] * 10
        assert httpx.get(f"{two.url}/readyz", timeout=30).status_code == 200


def worker_pids(parent: int) -> list[int]:
    """The server's worker processes: its children that map the vectors file."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and VECTORS in (entry / "maps").read_text():
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_workers_share_the_vectors_file_and_each_swaps_in_a_new_generation(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus, built = make_access_corpus(tmp_path / "corpus"), tmp_path / "built"
    build(corpus, built, settings, embedder)
    index = tmp_path / "replica" / "index"
    run("indexer", "ship", "--index", str(built), "--to", str(index))
    with server(index, SERVER, "--workers", "2") as running:
        assert wait_for(lambda: running.log.read_text().count("Application startup complete")
                        == 2, 120), running.log.read_text()
        pids = worker_pids(running.process.pid)
        assert len(pids) == 2 and running.process.pid not in pids
        write(corpus / NEW_DOC[0], NEW_DOC[1])
        new = build(corpus, built, settings, embedder).generation
        run("indexer", "ship", "--index", str(built), "--to", str(index))
        swapped = re.compile(rf"\[worker (\d+)\]: now serving generation {re.escape(new)}")
        assert wait_for(lambda: len(set(swapped.findall(running.log.read_text()))) == 2, 20), \
            running.log.read_text()
        assert {int(p) for p in swapped.findall(running.log.read_text())} == set(pids)
        assert {generation_of(running.url) for _ in range(20)} == {new}
        for pid in pids:  # each maps the new generation's vectors file, not a copy
            assert f"{new}/{VECTORS}" in Path(f"/proc/{pid}/maps").read_text()
    assert os.path.exists(index / "CURRENT")
