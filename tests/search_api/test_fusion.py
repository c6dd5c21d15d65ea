"""Fusion is a pure function of ranked lists: checked on hand-made lists."""

from __future__ import annotations

import pytest

from search_api.retrieval.fusion import document_aware, reciprocal_rank, weighted_scores


def test_weighted_scores_normalise_each_list_and_add() -> None:
    dense = [(1, 1.0), (2, 0.5), (3, 0.0)]        # -> 1, 0.5, 0
    lexical = [(3, 30.0), (4, 20.0), (1, 10.0)]   # -> 1, 0.5, 0
    fused = dict(weighted_scores([dense, lexical], [0.5, 0.5]))
    assert fused == pytest.approx({1: 0.5, 2: 0.25, 3: 0.5, 4: 0.25})
    assert [c for c, _ in weighted_scores([dense, lexical], [0.5, 0.5])] == [1, 3, 2, 4]


def test_a_wide_lexical_lead_survives_where_rank_fusion_loses_it() -> None:
    """Dense cannot tell near-duplicates apart; BM25 puts the quoted one far ahead."""
    dense = [(2, 0.801), (3, 0.800), (1, 0.799), (9, 0.2)]
    lexical = [(1, 40.0), (2, 11.0), (3, 10.0), (9, 0.5)]
    assert weighted_scores([dense, lexical], [0.5, 0.5])[0][0] == 1
    assert reciprocal_rank([dense, lexical])[0][0] == 2


def test_ties_and_empty_lists() -> None:
    assert weighted_scores([[], []], [0.5, 0.5]) == []
    assert weighted_scores([[(5, 1.0), (4, 1.0)], []], [0.5, 0.5]) == [(4, 0.5), (5, 0.5)]
    with pytest.raises(ValueError):
        weighted_scores([[(1, 1.0)]], [0.5, 0.5])


def test_reciprocal_rank_sums_over_lists() -> None:
    fused = dict(reciprocal_rank([[(1, 9.0), (2, 8.0)], [(2, 5.0)]], k=60))
    assert fused == pytest.approx({1: 1 / 61, 2: 1 / 62 + 1 / 61})


def test_document_aware_credits_a_documents_best_chunk_with_both_retrievers() -> None:
    # Dense likes chunk 1 of document A, BM25 likes chunk 2 of A: chunk by chunk neither gets
    # both, and document B's single chunk, second in both lists, wins.
    doc_of = {1: "A", 2: "A", 3: "B", 4: "C"}
    dense = [(1, 0.9), (3, 0.8), (2, 0.2), (4, 0.1)]
    lexical = [(2, 12.0), (3, 11.0), (4, 1.0), (1, 0.5)]
    assert weighted_scores([dense, lexical], [0.5, 0.5])[0][0] == 3
    fused = document_aware([dense, lexical], [0.5, 0.5], doc_of)
    # A's best chunk by fused score (2) carries A's best in both lists, each normalised to 1.
    assert fused[:2] == [(2, 1.0), (3, dict(weighted_scores([dense, lexical], [0.5, 0.5]))[3])]
    # A's other chunk keeps its own, chunk-level score: it does not ride on its document.
    assert dict(fused)[1] == dict(weighted_scores([dense, lexical], [0.5, 0.5]))[1]
    assert sorted(c for c, _ in fused) == [1, 2, 3, 4]


def test_document_aware_on_one_chunk_per_document_is_weighted_scores() -> None:
    dense = [(1, 1.0), (2, 0.5), (3, 0.0)]
    lexical = [(3, 30.0), (4, 20.0), (1, 10.0)]
    doc_of = {c: f"d{c}" for c in range(1, 5)}
    assert document_aware([dense, lexical], [0.5, 0.5], doc_of) == \
        weighted_scores([dense, lexical], [0.5, 0.5])
