"""Shipping a generation to a replica's directory: whole files before CURRENT, nothing else
(keys, audit) carried, a dead ship's debris cleared, the receiver's lock respected."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from indexer.store.layout import CURRENT, GENERATIONS, StoreError, live_generation_dir
from indexer.store.lock import LockHeld, build_lock
from indexer.store.reader import Generation
from indexer.store.shipping import ship
from tests.deployment import run
from tests.indexer.store.conftest import DOCS, write_generation


def test_the_live_generation_arrives_whole_and_becomes_live(tmp_path: Path) -> None:
    source, replica = tmp_path / "built", tmp_path / "replica"
    name = write_generation(source)
    (source / "keys.sqlite").write_text("not shipped")
    shipped = ship(source, replica, keep=3)
    assert shipped.generation == name and shipped.was_live is None and shipped.copied_bytes > 0
    assert (replica / CURRENT).read_text().strip() == name
    same = filecmp.dircmp(source / GENERATIONS / name, replica / GENERATIONS / name)
    assert not same.left_only and not same.right_only and not same.diff_files
    assert not (replica / "keys.sqlite").exists()
    assert Generation.open_live(replica).counts() == Generation.open_live(source).counts()
    assert ship(source, replica, keep=3).copied_bytes == 0  # already there: only CURRENT


def test_a_ship_that_died_leaves_only_debris_that_is_never_served(tmp_path: Path) -> None:
    source, replica = tmp_path / "built", tmp_path / "replica"
    first = write_generation(source)
    ship(source, replica, keep=3)
    second = write_generation(source, {k: v for k, v in DOCS.items() if k != "gloss-soc"})
    half = replica / GENERATIONS / f"{second}.tmp"
    half.mkdir()
    (half / "vectors.npy").write_bytes(b"half a file")
    assert live_generation_dir(replica) == replica / GENERATIONS / first  # still the old one
    assert ship(source, replica, keep=2).was_live == first
    assert live_generation_dir(replica) == replica / GENERATIONS / second
    assert not half.exists()
    assert Generation.open_live(replica).counts()[0] == len(DOCS) - 1


def test_ship_respects_the_receivers_lock_and_refuses_an_empty_source(tmp_path: Path) -> None:
    source, replica = tmp_path / "built", tmp_path / "replica"
    with pytest.raises(StoreError, match="no published index"):
        ship(source, replica, keep=3)
    write_generation(source)
    with build_lock(replica), pytest.raises(LockHeld):
        ship(source, replica, keep=3)
    assert not (replica / CURRENT).exists()
    ran = run("indexer", "ship", "--index", str(source), "--to", str(replica))
    assert ran.returncode == 0 and "live generation" in ran.stdout
    assert run("indexer", "ship", "--index", str(source), "--to", str(source)).returncode == 1
