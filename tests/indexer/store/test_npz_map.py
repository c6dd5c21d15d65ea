"""An uncompressed .npz memory-mapped member by member: equal to np.load, read-only, shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.store.bm25 import Postings
from indexer.store.npz_map import map_npz


def test_every_kind_of_member_maps_to_what_np_load_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"ids": rng.integers(0, 2**62, 1001, dtype=np.int64),
              "counts": rng.integers(0, 60000, (777, 3)).astype(np.uint16),
              "fortran": np.asfortranarray(rng.standard_normal((5, 7)).astype(np.float32)),
              "blob": np.frombuffer("naïve ünïcode".encode(), dtype=np.uint8),
              "empty": np.zeros(0, dtype=np.int32), "scalar": np.array(3.5)}
    path = tmp_path / "x.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    mapped = map_npz(path)
    assert mapped is not None and set(mapped) == set(arrays)
    with np.load(path) as data:
        for name in arrays:
            assert mapped[name].dtype == data[name].dtype and \
                np.array_equal(mapped[name], data[name]), name
    assert not mapped["ids"].flags.writeable and not mapped["ids"].flags.owndata


def test_compressed_or_object_members_are_left_to_np_load(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "z.npz", a=np.arange(10))
    assert map_npz(tmp_path / "z.npz") is None
    np.savez(tmp_path / "o.npz", a=np.array([{"x": 1}], dtype=object))
    assert map_npz(tmp_path / "o.npz") is None


def test_postings_are_mapped_not_copied(tmp_path: Path) -> None:
    postings = Postings.partition(
        np.array([5, 3], dtype=np.int64), np.array([4, 2], dtype=np.int64),
        np.frombuffer(b"ab", dtype=np.uint8), np.array([0, 1, 2]), np.array([0, 1, 3]),
        np.array([0, 0, 1], dtype=np.int32), np.ones((3, 3), dtype=np.uint16), np.array([0, 2]))
    postings.save(tmp_path / "lexical.npz")
    loaded = Postings.load(tmp_path / "lexical.npz")
    assert not loaded.rows.flags.owndata and not loaded.counts.flags.writeable
    assert np.array_equal(loaded.rows, postings.rows)
