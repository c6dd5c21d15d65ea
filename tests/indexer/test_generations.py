"""Kept generations: listing, rollback to the one before or to a named one, debris removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.build import build
from indexer.embed import Embedder
from indexer.settings import IndexerSettings
from indexer.store.generations import RollbackError, clean_debris, list_generations, rollback
from indexer.store.layout import CURRENT, GENERATIONS
from indexer.store.reader import Generation
from tests.factory import write


def test_list_and_roll_back(tmp_path: Path, settings: IndexerSettings,
                            embedder: Embedder) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "access.yaml", "partners: [a]\nrules:\n  - match: '**'\n    allow: [a]\n")
    reports = []
    for n in range(3):
        write(corpus / f"note-{n}.txt", f"Field note {n}: the anode slurry viscosity was {n}0 Pa.")
        reports.append(build(corpus, index, settings, embedder))
    gens = list_generations(index)
    assert [g.name for g in gens] == [r.generation for r in reports]
    assert [g.documents for g in gens] == [1, 2, 3] and [g.live for g in gens] == [0, 0, 1]
    assert all(g.built_at.startswith("20") for g in gens)

    assert rollback(index) == (reports[2].generation, reports[1].generation)
    assert Generation.open_live(index).name == reports[1].generation
    assert rollback(index) == (reports[1].generation, reports[0].generation)
    with pytest.raises(RollbackError, match="no generation older than the live one"):
        rollback(index)
    assert rollback(index, to=reports[2].generation)[1] == reports[2].generation
    with pytest.raises(RollbackError, match="no complete generation named 'nope'"):
        rollback(index, to="nope")
    assert (index / CURRENT).read_text().strip() == reports[2].generation

    # A build after a rollback starts from what is live, and keeps 3 generations.
    rollback(index, to=reports[0].generation)
    after = build(corpus, index, settings, embedder)
    assert after.added == 2 and after.files_carried == 1 and after.files_parsed == 2
    assert len(list_generations(index)) == settings.keep_generations


def test_debris_of_a_killed_build_is_removed(tmp_path: Path) -> None:
    (tmp_path / GENERATIONS / "20260101T000000000000Z-abcdef.tmp").mkdir(parents=True)
    (tmp_path / f"{CURRENT}.tmp").write_text("x\n")
    assert set(clean_debris(tmp_path)) == {f"{CURRENT}.tmp",
                                           "20260101T000000000000Z-abcdef.tmp"}
    assert not list((tmp_path / GENERATIONS).iterdir()) and not (tmp_path / "CURRENT.tmp").exists()
