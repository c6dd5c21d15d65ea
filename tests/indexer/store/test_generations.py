"""Kept generations: listing, rollback to the one before or to a named one, debris removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.store.generations import RollbackError, clean_debris, list_generations, rollback
from indexer.store.layout import CURRENT, GENERATIONS, VECTOR_IDS
from indexer.store.reader import Generation
from tests.indexer.store.conftest import DOCS, write_generation


def test_list_and_roll_back(tmp_path: Path) -> None:
    names = [write_generation(tmp_path, dict(list(DOCS.items())[:n + 1]),
                              report={"documents": n + 1, "chunks": 10 * (n + 1),
                                      "finished_at": f"2026-11-2{n}T02:30:00+00:00"})
             for n in range(3)]
    gens = list_generations(tmp_path)
    assert [g.name for g in gens] == names
    assert [g.documents for g in gens] == [1, 2, 3] and [g.live for g in gens] == [0, 0, 1]
    assert [g.built_at for g in gens][0] == "2026-11-20T02:30:00+00:00"
    assert gens[1].report["chunks"] == 20  # the report as written, for the Builds page

    assert rollback(tmp_path) == (names[2], names[1])
    assert Generation.open_live(tmp_path).name == names[1]
    assert Generation.open_live(tmp_path).counts() == (2, 3)
    assert rollback(tmp_path) == (names[1], names[0])
    with pytest.raises(RollbackError, match="no generation older than the live one"):
        rollback(tmp_path)
    assert rollback(tmp_path, to=names[2])[1] == names[2]
    with pytest.raises(RollbackError, match="no complete generation named 'nope'"):
        rollback(tmp_path, to="nope")
    assert (tmp_path / CURRENT).read_text().strip() == names[2]


def test_an_incomplete_generation_is_neither_listed_nor_a_rollback_target(tmp_path: Path) -> None:
    first, second = write_generation(tmp_path), write_generation(tmp_path)
    (tmp_path / GENERATIONS / first / VECTOR_IDS).unlink()
    assert [g.name for g in list_generations(tmp_path)] == [second]
    with pytest.raises(RollbackError, match="no generation older"):
        rollback(tmp_path)


def test_debris_of_a_killed_build_is_removed(tmp_path: Path) -> None:
    (tmp_path / GENERATIONS / "20260101T000000000000Z-abcdef.tmp").mkdir(parents=True)
    (tmp_path / f"{CURRENT}.tmp").write_text("x\n")
    assert set(clean_debris(tmp_path)) == {f"{CURRENT}.tmp",
                                           "20260101T000000000000Z-abcdef.tmp"}
    assert not list((tmp_path / GENERATIONS).iterdir()) and not (tmp_path / "CURRENT.tmp").exists()
