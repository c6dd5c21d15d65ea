"""How the cluster's vectors come back: batches in any order, regrouped into the build's blocks
in order, each block handed over only when all of its rows are in (no Ray needed to test it)."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.cluster.embed import in_blocks
from indexer.workers import WorkersUnavailable


def batch(rows: list[int]) -> dict[str, np.ndarray]:
    """Rows whose vector is [row, row]: where each one lands shows."""
    return {"row": np.array(rows), "vector": np.array([[r, r] for r in rows], np.float32),
            "busy": np.zeros(len(rows))}


def test_batches_out_of_order_and_across_blocks_come_back_as_the_blocks_in_order() -> None:
    sizes = [0, 3, 0, 2, 0]  # empty blocks too: everything of them was reused
    seen: list[int] = []
    out = list(in_blocks([batch([3, 4]), batch([1, 2]), batch([0])], sizes, 2,
                         lambda b: seen.append(len(b["row"]))))
    assert [len(block) for block in out] == sizes
    assert out[1][:, 0].tolist() == [0, 1, 2] and out[3][:, 0].tolist() == [3, 4]
    assert seen == [2, 2, 1]


def test_a_block_waits_for_its_last_row_and_a_missing_row_is_an_error() -> None:
    blocks = in_blocks([batch([0, 2])], [2, 1], 2, lambda b: None)
    with pytest.raises(WorkersUnavailable, match="vectors of 0 of 2 blocks"):
        next(blocks)
