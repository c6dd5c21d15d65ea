"""Fusion is a pure function of ranked lists: checked on hand-made lists."""

from __future__ import annotations

import random

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


def _reference(lists: list[list[tuple[int, float]]], weights: list[float],
               doc_of: dict[int, object]) -> list[tuple[int, float]]:
    """document_aware as first written, a loop over dicts: the definition the numpy version
    must equal exactly (scores to the last bit, order, ties by chunk id)."""
    def normalised(ranked: list[tuple[int, float]]) -> dict[int, float]:
        if not ranked:
            return {}
        low, high = min(s for _, s in ranked), max(s for _, s in ranked)
        return {c: (s - low) / (high - low) if high > low else 1.0 for c, s in ranked}

    fused: dict[int, float] = {}
    by_doc: dict[object, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for chunk_id, score in normalised(ranked).items():
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * score
        best: dict[object, tuple[int, float]] = {}
        for chunk_id, score in ranked:
            best.setdefault(doc_of[chunk_id], (chunk_id, score))
        for chunk_id, score in normalised(list(best.values())).items():
            by_doc[doc_of[chunk_id]] = by_doc.get(doc_of[chunk_id], 0.0) + weight * score
    credited: set[object] = set()
    out = []
    for chunk_id, score in sorted(fused.items(), key=lambda item: (-item[1], item[0])):
        if doc_of[chunk_id] not in credited:
            credited.add(doc_of[chunk_id])
            score = max(score, by_doc[doc_of[chunk_id]])
        out.append((chunk_id, score))
    return sorted(out, key=lambda item: (-item[1], item[0]))


@pytest.mark.parametrize("seed", range(300))
def test_document_aware_equals_its_definition_exactly(seed: int) -> None:
    rng = random.Random(seed)
    chunks = rng.sample(range(1, 2**40 if seed % 2 else 61), rng.randint(1, 60))
    documents = rng.randint(1, 30)
    doc_of = {c: rng.randrange(documents) if seed % 3 else f"doc-{rng.randrange(documents)}"
              for c in chunks}
    lists, weights = [], []
    for _ in range(rng.choice([1, 2, 2, 3])):
        picked = rng.sample(chunks, rng.randint(0, len(chunks)))
        scores = sorted((rng.choice([rng.random(), round(rng.random(), 1), 1.0]) * 30
                         for _ in picked), reverse=True)  # ties, and all-equal lists
        lists.append(list(zip(picked, scores, strict=True)))
        weights.append(rng.choice([0.5, 0.3, 0.7]))
    assert document_aware(lists, weights, doc_of) == _reference(lists, weights, doc_of)
    if all(len({doc_of[c] for c, _ in ranked}) == len(ranked) for ranked in lists) and \
            len({doc_of[c] for c in chunks}) == len(chunks):
        assert document_aware(lists, weights, doc_of) == weighted_scores(lists, weights)
