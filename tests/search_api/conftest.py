"""An app over the access corpus, served in-process (TestClient) with a controllable date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from search_api.identity.keys import KeyStore
from search_api.retrieval.live import IndexHolder
from tests.deployment import app_client, make_build_history
from tests.sharding import Pair, build_pair


class Clock:
    def __init__(self) -> None:
        self.today = date(2026, 11, 23)

    def __call__(self) -> date:
        return self.today


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def holder(access_index: tuple[Path, BuildReport]) -> IndexHolder:
    return IndexHolder(access_index[0], torch_threads=1)


@pytest.fixture(scope="session")
def client(access_index: tuple[Path, BuildReport], holder: IndexHolder,
           clock: Clock) -> Iterator[TestClient]:
    with app_client(access_index[0], holder=holder, today=clock) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def keys(access_index: tuple[Path, BuildReport]) -> dict[str, str]:
    """One key per partner of the access corpus, and one admin key."""
    store = KeyStore(access_index[0])
    out = {p: store.create(f"test {p}", p, False)[1] for p in ("alpha", "beta", "gamma", "delta")}
    out["admin"] = store.create("test admin", None, True)[1]
    return out


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index) of the owned corpus with two generations and three recorded runs
    (tests/deployment.make_build_history). Tests that change it work on a copy."""
    return make_build_history(tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
         embedder: Embedder) -> Pair:
    """The access corpus built as one index and as two shards (tests/sharding.py)."""
    return build_pair(tmp_path_factory.mktemp("shards"), settings, embedder)
