"""An index written before the index format became its own package (tests/data, built by the
code of 2026-11-30 before that change) is still read and served, by every mode."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from indexer.settings import default_model
from indexer.store.reader import Generation
from search_api.keys import KeyStore
from tests.deployment import app_client

OLD = Path(__file__).resolve().parent / "data" / "index-before-store-package"


@pytest.fixture()
def old_index(tmp_path: Path) -> Path:
    """A copy, its recorded model pointed at this checkout's packaged model (a generation
    records the model's directory, which differs from machine to machine)."""
    index = tmp_path / "index"
    shutil.copytree(OLD, index)
    [meta] = index.glob("generations/*/meta.sqlite")
    with sqlite3.connect(meta) as db:
        db.execute("UPDATE info SET value = ? WHERE key = 'model'", (default_model(),))
    return index


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
