"""The nightly build on a Ray cluster (`--ray ADDRESS`): the same index as a local build, and
the faults, each on a real cluster this module starts (one head on loopback, 2 CPUs) or that
`--ray local` starts; real processes, nothing mocked.

- a build with `--ray local` of Office files, a scan, encrypted and broken files publishes what
  a local build publishes (documents, chunk ids, texts, grants, report counts; vectors within
  cosine 0.9999) and leaves no Ray process behind;
- an unreachable cluster is exit 1 naming the address, and nothing is published;
- a parse worker and the embedding actor killed mid-build are restarted by Ray, their work sent
  again, and the build completes;
- a build killed on the driver publishes nothing, Ray frees what its actors held, and the next
  build is clean.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.discover import discover
from indexer.embed.embedder import Embedder
from indexer.store.layout import CURRENT, GENERATIONS
from indexer.store.lock import LOCK
from indexer.store.reader import Generation
from indexer.store.runs import RUNS
from tests.conftest import MANIFEST, make_access_corpus
from tests.deployment import ENV, ROOT, RayHead, free_port, run
from tests.environment import EVAL
from tests.factory import write
from tests.indexer.test_cli_reindex import bulk, wait_for_line
from tests.indexer.test_reindex_crash import served
from tests.indexer.test_reindex_pdfs import passwords

pytestmark = pytest.mark.slow
COUNTS = ("documents", "chunks", "embedded", "reused", "added", "changed", "unchanged",
          "deleted", "files_parsed", "files_carried")
SMALL_BATCHES = {"PKS_RAY_BATCH_SIZE": "16"}  # many batches: progress lines, a kill mid-way


def needs_files(test: Callable[..., None]) -> Callable[..., None]:
    """The shared Office and PDF files, and tesseract for the scans."""
    for mark in (pytest.mark.needs_eval("office"), pytest.mark.needs_eval("pdfs", "MANIFEST.tsv"),
                 pytest.mark.needs_program("tesseract", "apt-get install tesseract-ocr")):
        test = mark(test)
    return test


@pytest.fixture()
def head(ray_head: RayHead) -> RayHead:
    """The session's Ray head (tests/conftest.py)."""
    return ray_head


def mixed_corpus(root: Path, scans: int = 1) -> Path:
    """The access corpus plus Office files, scans (OCR), encrypted and broken PDFs."""
    corpus = make_access_corpus(root)
    for name in ("test.docx", "test.pptx", "test.xlsx", "test_email.eml"):
        write(corpus / "shared/office" / name, (EVAL / "office" / name).read_bytes())
    for i in range(scans):
        write(corpus / f"alpha/scans/linn-{i}.pdf",
              (EVAL / "pdfs/scanned/linn.pdf").read_bytes())
    for name in ("crazyones-encrypted-256.pdf", "password-example.pdf"):
        write(corpus / "beta/locked" / name, (EVAL / "pdfs/encrypted" / name).read_bytes())
    for name in ("invalid.pdf", "empty.pdf"):
        write(corpus / "beta/broken" / name, (EVAL / "pdfs/broken" / name).read_bytes())
    write(corpus / "access.yaml", MANIFEST + """\
passwords:
  "beta/locked/crazyones-*.pdf": PKS_TEST_PW_CRAZYONES
  "beta/locked/password-example.pdf": PKS_TEST_PW_NEVER_SET
""")
    return corpus


def build(corpus: Path, index: Path, *extra: str, env: dict[str, str] | None = None
          ) -> tuple[int, str, dict[str, Any]]:
    """An in-process build: (exit code, stderr, its --report JSON)."""
    report = index.parent / f"{index.name}.json"
    ran = run("indexer", "build", "--corpus", str(corpus), "--index", str(index), "--report",
              str(report), *extra, env=env)
    return ran.returncode, ran.stderr, json.loads(report.read_text())


def start_build(corpus: Path, index: Path, *extra: str) -> subprocess.Popen[str]:
    """A build as its own driver process, to be watched through its log lines and killed."""
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index",
         str(index), *extra], cwd=ROOT, env={**ENV, **SMALL_BATCHES},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def whole(gen: Generation) -> dict[str, Any]:
    """Everything a generation serves, but its vectors."""
    ids = gen.all_chunk_ids()
    passages = gen.passages(ids.tolist())
    docs = sorted({p.doc_id for p in passages.values()})
    return {"ids": ids.tolist(), "passages": passages,
            "documents": [(row.doc_id, row.path, row.title, row.chunk_ids.tolist())
                          for row in map(gen.document, docs) if row is not None],
            "grants": [(g.partner, g.until, g.chunk_ids.tolist()) for g in gen.grant_rows()],
            "files": gen.file_records()}


def ray_children() -> list[str]:
    """Ray's own processes (head, raylet) that this test process started and still runs."""
    names = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                status = dict(line.split(":\t", 1) for line in
                              (proc / "status").read_text().splitlines() if ":\t" in line)
                if int(status["PPid"]) == os.getpid() and status["State"][0] != "Z" and \
                        status["Name"].strip() in ("gcs_server", "raylet"):
                    names.append(status["Name"].strip())
        except (OSError, KeyError, ValueError):
            pass
    return names


@needs_files
def test_a_build_on_ray_local_publishes_the_same_index_as_a_local_build(tmp_path: Path) -> None:
    corpus = mixed_corpus(tmp_path / "corpus")
    env = {"PKS_TEST_PW_CRAZYONES": passwords()["crazyones-encrypted-256.pdf"]}
    code, err, here = build(corpus, tmp_path / "local", env=env)
    assert code == 3, err  # published; the broken and the locked files are skipped
    code, err, there = build(corpus, tmp_path / "ray", "--ray", "local", env=env)
    assert code == 3, err
    assert "Traceback" not in err

    assert {k: there[k] for k in COUNTS} == {k: here[k] for k in COUNTS}
    for kind in ("skipped", "kept_previous", "warnings"):
        assert there[kind] == here[kind], kind
    reasons = {s["path"]: s["reason"] for s in there["skipped"]}
    assert reasons["beta/locked/password-example.pdf"] == (
        "encrypted: environment variable PKS_TEST_PW_NEVER_SET named in access.yaml is not set")
    assert {"beta/broken/invalid.pdf", "beta/broken/empty.pdf"} <= set(reasons)

    assert here["stages"]["parse"] == {"on": "local", "processes": 1, "per_process": {}}
    parse, embed = there["stages"]["parse"], there["stages"]["embed"]
    assert (parse["on"], parse["actors"], parse["per_actor"]) == ("ray", 2, {"CPU": 1.0})
    assert (embed["on"], embed["actors"], embed["per_actor"]) == ("ray", 1, {"CPU": 2.0})
    [node] = parse["nodes"]  # where the work ran: the one node, every file and every text
    assert node.startswith("127.0.0.1 (")  # but the file whose password is not set: the
    assert parse["nodes"][node] == there["files_parsed"] - 1  # build itself refuses it
    assert embed["nodes"] == {node: there["embedded"]} and there["shards"] == 1
    assert embed["backend"] == here["stages"]["embed"]["backend"]
    assert there["cluster"] == {"address": "local", "nodes": 1, "cpus": 2.0, "gpus": 0}
    assert there["embedded"] > 0 and there["reused"] == 0 and there["embedded_per_second"] > 0
    assert "embedding on ray (1 actor): " in err and "loading on ray (2 actors): " in err
    assert ray_children() == []  # the local cluster stopped with the build

    local = Generation.open_live(tmp_path / "local")
    on_ray = Generation.open_live(tmp_path / "ray")
    assert whole(on_ray) == whole(local)
    ids = local.all_chunk_ids()
    cosines = np.sum(local.vectors.vectors(ids) * on_ray.vectors.vectors(ids), axis=1)
    assert cosines.min() >= 0.9999
    passages = list(whole(on_ray)["passages"].values())
    assert any(p.ocr and "linn" in p.doc_id for p in passages)  # the scan was OCR'd there
    assert {"shared/office/test.docx", "shared/office/test.pptx", "shared/office/test.xlsx",
            "beta/locked/crazyones-encrypted-256.pdf"} <= {p.path for p in passages}


def test_an_unreachable_cluster_is_exit_1_naming_it_and_nothing_is_published(
        tmp_path: Path) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    code, err, _ = build(corpus, index)
    assert code == 0, err
    live, generations = (index / CURRENT).read_text(), sorted((index / GENERATIONS).iterdir())
    write(corpus / "alpha/new-finding.txt", "KESTREL batch 9 reached 15.8 mS/cm.")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    for how in (("--ray", address), ()):  # the flag, and PKS_RAY_ADDRESS alone
        code, err, report = build(corpus, index, *how, env={"PKS_RAY_ADDRESS": address})
        assert code == 1, err
        # refused by the build's own check, before Ray's many minutes of retries
        assert f"cannot reach the Ray cluster at {address}: Connection refused" in err
        assert "nothing was published" in err and "Traceback" not in err
        assert report["exit_code"] == 1 and address in str(report["error"])
    code, err, report = build(corpus, index, "--ray", "head-node")  # no port
    assert code == 2 and "ray_address" in err, err
    with pytest.MonkeyPatch.context() as without:
        without.setitem(sys.modules, "ray", None)  # as where the extra is not installed
        code, err, report = build(corpus, index, "--ray", "local")
    assert code == 1 and "needs the 'cluster' extra: pip install" in err, err
    assert (index / CURRENT).read_text() == live
    assert sorted((index / GENERATIONS).iterdir()) == generations
    assert "alpha/new-finding.txt" not in served(index)


@needs_files
def test_workers_killed_mid_build_are_restarted_and_the_build_completes(
        tmp_path: Path, head: RayHead, embedder: Embedder) -> None:
    corpus, index = mixed_corpus(tmp_path / "corpus", scans=2), tmp_path / "index"
    for name in ("locked", "broken"):  # this build has no file to skip
        shutil.rmtree(corpus / "beta" / name)
    bulk(corpus, 20)
    driver = start_build(corpus, index, "--ray", head.address)
    try:
        wait_for_line(driver, "phase loading")  # two scans to OCR: seconds per file
        parser = kill_first(head, "ray::ParseActor", after=1.0)
        wait_for_line(driver, "chunks (10 %)")  # the first embedding batches are in
        embedding = kill_first(head, "ray::MapWorker(MapBatches(EmbedActor))")
        _, err = driver.communicate(timeout=600)
    finally:
        driver.kill()
    assert parser and embedding  # one parse worker and the embedding actor were killed
    assert driver.returncode == 0, err

    report = json.loads((index / GENERATIONS / (index / CURRENT).read_text().strip() /
                         "report.json").read_text())
    assert report["skipped"] == [] and report["kept_previous"] == []
    assert report["files_parsed"] == len(discover(corpus))  # every file's work was done
    assert report["embedded"] > 0 and report["reused"] == 0
    gen = Generation.open_live(index)
    passages = list(gen.passages(gen.all_chunk_ids().tolist()).values())
    assert {p.doc_id for p in passages if p.ocr} == {f"alpha/scans/linn-{i}.pdf"
                                                     for i in range(2)}
    assert {f"bulk-{i}" for i in range(20)} <= {p.doc_id for p in passages}
    vectors = gen.vectors.vectors(np.array([p.chunk_id for p in passages]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)  # none left empty
    sample = passages[::max(1, len(passages) // 24)]
    again = embedder.embed([p.text for p in sample])
    stored = gen.vectors.vectors(np.array([p.chunk_id for p in sample]))
    assert np.sum(again * stored, axis=1).min() >= 0.999


def test_a_build_killed_on_the_driver_publishes_nothing_and_the_next_is_clean(
        tmp_path: Path, head: RayHead) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    code, err, _ = build(corpus, index)
    assert code == 0, err
    live, docs = (index / CURRENT).read_text(), served(index)
    bulk(corpus, 20)
    driver = start_build(corpus, index, "--ray", head.address)
    try:
        wait_for_line(driver, "embedding on ray (1 actor): ")  # the cluster is embedding
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert (index / CURRENT).read_text() == live
    assert served(index) == docs
    assert [p.name for p in (index / GENERATIONS).iterdir() if p.name.endswith(".tmp")]
    assert free_cpus(head.address) == 2  # Ray ended the dead driver's actors

    code, err, report = build(corpus, index)
    assert code == 0, err
    assert "removed what an interrupted build left" in err
    assert served(index) == docs | {f"bulk-{i}" for i in range(20)}
    assert not [p for p in (index / GENERATIONS).iterdir() if p.name.endswith(".tmp")]
    assert {p.name for p in index.iterdir()} == {LOCK, CURRENT, GENERATIONS, RUNS}
    assert (index / LOCK).read_text() == ""


def free_cpus(address: str, wait: float = 60) -> float:
    """The cluster's CPUs free of any job, once they are all free (or after `wait` s)."""
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    try:
        deadline = time.monotonic() + wait
        while (free := ray.available_resources().get("CPU", 0)) < ray.cluster_resources()["CPU"] \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        return float(free)
    finally:
        ray.shutdown()


def kill_first(head: RayHead, title: str, after: float = 0.0) -> list[int]:
    """SIGKILL the first of the cluster's processes titled `title` once it has run `after`
    seconds (it is then working); the pid killed, or [] if none appeared within 120 s."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if found := head.processes(title):
            time.sleep(after)
            os.kill(found[0], signal.SIGKILL)
            return found[:1]
        time.sleep(0.1)
    return []
