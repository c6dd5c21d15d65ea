"""Fusion: ranked lists of (chunk id, score) from several retrievers -> one ranked list.

Pure functions of their arguments: no index, no access check (every input list already lies
inside the caller's allowed set, so their union does too).
"""

from __future__ import annotations

from collections.abc import Sequence

Ranked = list[tuple[int, float]]

RRF_K = 60  # the constant of Cormack et al. (2009), used unchanged by most hybrid engines


def reciprocal_rank(lists: Sequence[Ranked], k: int = RRF_K) -> Ranked:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists that hold a chunk."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (chunk_id, _) in enumerate(ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
