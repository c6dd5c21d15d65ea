"""End to end, as an operator and a client use it: CLI build, CLI keys, a real uvicorn server
on loopback, HTTP queries, revocation, a killed re-index, and a live swap to a new generation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from indexer.store.layout import CURRENT, GENERATIONS
from tests.conftest import VISIBLE, make_access_corpus
from tests.deployment import ENV, ROOT, cli, run, serve
from tests.factory import write, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("e2e")
    corpus, index = make_access_corpus(base / "corpus"), base / "index"
    built = run("indexer", "build", "--corpus", str(corpus), "--index", str(index))
    assert built.returncode == 0, built.stderr
    keys = {}
    for partner in ("alpha", "beta", "gamma"):
        created = run("search_api", "keys", "create", "--index", str(index), "--partner", partner,
                      "--name", f"{partner} bot")
        assert created.returncode == 0, created.stderr
        keys[partner] = created.stdout.strip().splitlines()[-1]
    admin = cli("search_api", "keys", "create", "--index", str(index), "--admin")  # a process
    assert admin.returncode == 0, admin.stderr
    keys["admin"] = admin.stdout.strip().splitlines()[-1]
    with serve(index, {"PKS_RELOAD_SECONDS": "0.5"}) as url:
        yield {"url": url, "keys": keys, "corpus": corpus, "index": index}


def ask(deployment: dict, who: str, query: str, top_k: int = 20) -> httpx.Response:
    return httpx.post(f"{deployment['url']}/v1/search", json={"query": query, "top_k": top_k},
                      headers={"Authorization": f"Bearer {deployment['keys'][who]}"}, timeout=30)


def test_partners_get_only_their_passages_over_http(deployment: dict) -> None:
    for partner in ("alpha", "beta", "gamma"):
        response = ask(deployment, partner, "KESTREL sulfide electrolyte conductivity", top_k=50)
        assert response.status_code == 200
        docs = {r["doc_id"] for r in response.json()["results"]}
        assert docs and docs <= VISIBLE[partner]
    top = ask(deployment, "alpha", "KESTREL sulfide electrolyte conductivity").json()["results"][0]
    assert top["doc_id"] == "alpha/electrolyte.txt"
    assert set(top) == {"chunk_id", "doc_id", "title", "path", "page", "section", "ocr", "text",
                        "score"}


def test_concurrent_requests_of_different_partners_never_mix(deployment: dict) -> None:
    queries = ["KESTREL electrolyte", "OSPREY fibre drift", "PELICAN recycling",
               "ALBATROSS acquisition", "HERON swelling", "Rotterdam steering committee"]
    jobs = [(who, q) for q in queries for who in ("alpha", "beta", "gamma")] * 3

    def run(job: tuple[str, str]) -> tuple[str, set[str]]:
        who, query = job
        response = ask(deployment, who, query, top_k=50)
        assert response.status_code == 200
        return who, {r["doc_id"] for r in response.json()["results"]}

    with ThreadPoolExecutor(8) as pool:
        for who, docs in pool.map(run, jobs):
            assert docs and docs <= VISIBLE[who]


def test_keys_list_and_revoke_take_effect_on_the_running_server(deployment: dict) -> None:
    index = str(deployment["index"])
    listing = run("search_api", "keys", "list", "--index", index)
    assert "partner=beta" in listing.stdout and "beta bot" in listing.stdout
    assert deployment["keys"]["beta"] not in listing.stdout  # secrets are never shown
    key_id = deployment["keys"]["beta"].split("_")[1]
    assert run("search_api", "keys", "revoke", key_id, "--index", index).returncode == 0
    response = ask(deployment, "beta", "fibre sensors")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_killed_reindex_leaves_the_served_index_intact_and_a_new_one_goes_live(
        deployment: dict) -> None:
    corpus, index = deployment["corpus"], deployment["index"]
    live = (index / CURRENT).read_text()
    # Enough new text that the build is still embedding when it is killed.
    write_jsonl(corpus / "shared/bulk.jsonl", [
        {"_id": f"bulk-{i}", "title": f"Bulk note {i}",
         "text": f"Routine maintenance log entry {i}: " + "inspection of the coating line. " * 40}
        for i in range(400)])
    build = subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(index)],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not any(p.name.endswith(".tmp") for p in (index / GENERATIONS).iterdir()):
        assert time.time() < deadline and build.poll() is None, "build never started writing"
        time.sleep(0.1)
    build.kill()
    build.wait()
    assert (index / CURRENT).read_text() == live
    assert ask(deployment, "alpha", "pilot line dew point").status_code == 200

    (corpus / "shared/bulk.jsonl").unlink()
    write(corpus / "alpha/new-finding.txt",
          "Project KESTREL batch 9 reached 15.8 mS/cm after hot pressing at 200 MPa.")
    rebuilt = run("indexer", "build", "--corpus", str(corpus), "--index", str(index))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not any(p.name.endswith(".tmp") for p in (index / GENERATIONS).iterdir())
    deadline = time.time() + 30
    while time.time() < deadline:  # the server swaps to the new generation by itself
        results = ask(deployment, "alpha", "KESTREL batch 9 hot pressing", top_k=1).json()
        if results["results"] and results["results"][0]["doc_id"] == "alpha/new-finding.txt":
            break
        time.sleep(0.5)
    else:
        pytest.fail("the new generation never went live")
    gamma = ask(deployment, "gamma", "KESTREL batch 9 hot pressing", top_k=50).json()
    assert "alpha/new-finding.txt" not in json.dumps(gamma)
