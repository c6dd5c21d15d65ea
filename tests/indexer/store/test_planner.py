"""The filtered-search planner: whichever way it chooses to scan, the answer is the exact top-k
over the allowed set (numpy brute force), never an id outside it, never fewer than
min(k, |allowed|) results."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from indexer.store.planner import Strategy, plan, runs, top_k
from indexer.store.reader import Generation
from indexer.store.vectors import VectorStore
from search_api.access.allowed import AccessIndex
from search_api.identity.principal import Principal

DIM = 24


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def chunk_ids(n: int, seed: int) -> np.ndarray:
    """Hash-like 53-bit ids, as the indexer makes: unrelated to row order."""
    return np.random.default_rng(seed).choice(2**53, n, replace=False).astype(np.int64)


def brute_force(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray,
                k: int) -> list[int]:
    mask = np.isin(ids, allowed)
    sub_ids, scores = ids[mask], vectors[mask] @ query
    return sub_ids[np.lexsort((sub_ids, -scores))][:k].tolist()


def frozen(ids: np.ndarray) -> np.ndarray:
    out = np.unique(ids)
    out.setflags(write=False)
    return out


def make_store(n: int) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    ids, vectors = chunk_ids(n, 1), unit(n, 2)
    vs = VectorStore.create(DIM)
    for start in range(0, n, 997):  # added in blocks, as a build does
        vs.add(ids[start:start + 997], vectors[start:start + 997])
    return vs, ids, vectors


@pytest.fixture(scope="module")
def larger_store() -> tuple[VectorStore, np.ndarray, np.ndarray]:
    return make_store(20_000)


@pytest.fixture(scope="module", params=[500, 20_000], ids=["small-index", "larger-index"])
def store(request: pytest.FixtureRequest) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    return make_store(500) if request.param == 500 else request.getfixturevalue("larger_store")


SHARES = [("one", 1), ("tiny", 5), ("1%", 0.01), ("10%", 0.1), ("50%", 0.5), ("all", 1.0)]


@pytest.mark.parametrize("layout", ["contiguous", "scattered"])
@pytest.mark.parametrize(("label", "share"), SHARES, ids=[s[0] for s in SHARES])
def test_every_plan_returns_the_brute_force_top_k_within_the_allowed_set(
        store: tuple[VectorStore, np.ndarray, np.ndarray], layout: str, label: str,
        share: float) -> None:
    vs, ids, vectors = store
    n = ids.size
    m = int(share) if share >= 1 and label != "all" else max(1, int(n * share))
    rng = np.random.default_rng(7)
    if layout == "contiguous":  # rows [start, start + m)
        start = int(rng.integers(0, n - m + 1))
        allowed = frozen(ids[start:start + m])
    else:
        allowed = frozen(rng.choice(ids, m, replace=False))
    for k in (1, 10, 100):
        for q in range(3):
            query = unit(1, 100 + q)[0]
            hits = vs.search(query, allowed, k)
            got = [h.chunk_id for h in hits]
            assert got == brute_force(ids, vectors, query, allowed, k)
            assert len(got) == min(k, m)
            assert set(got) <= set(allowed.tolist())
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)


def test_the_planner_picks_by_what_the_caller_may_see(
        larger_store: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    """Stated for an index large enough that the per-call cost no longer decides."""
    vs, ids, _ = larger_store
    n = ids.size
    assert vs.plan_for(frozen(ids)).strategy is Strategy.SCAN  # everything: one pass
    assert vs.plan_for(frozen(ids[:200])).strategy is Strategy.RANGES  # 1 %, one run
    assert vs.plan_for(frozen(ids[::100])).strategy is Strategy.ROWS  # 1 %, scattered
    assert vs.plan_for(frozen(ids[::2])).strategy is Strategy.SCAN  # half, scattered
    assert vs.plan_for(frozen(ids[: n // 2])).strategy is Strategy.RANGES  # half, one run
    assert vs.plan_for(frozen(ids[:0])).strategy is Strategy.EMPTY


def test_unknown_ids_and_empty_sets_find_nothing_more(
        store: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    vs, ids, vectors = store
    query = unit(1, 5)[0]
    assert vs.search(query, frozen(np.zeros(0, dtype=np.int64)), 10) == []
    strangers = frozen(np.array([3, 5, 7], dtype=np.int64))  # ids that are not stored
    assert vs.search(query, strangers, 10) == []
    mixed = frozen(np.concatenate((strangers, ids[:4])))
    assert [h.chunk_id for h in vs.search(query, mixed, 10)] == \
        brute_force(ids, vectors, query, ids[:4], 10)


def test_a_writable_allowed_array_is_never_served_from_a_stale_plan(
        store: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    vs, ids, _ = store
    query = unit(1, 6)[0]
    allowed = np.sort(ids[:3].copy())
    first = {h.chunk_id for h in vs.search(query, allowed, 10)}
    allowed[:] = np.sort(ids[3:6])  # same array object, other contents
    second = {h.chunk_id for h in vs.search(query, allowed, 10)}
    assert first == set(ids[:3].tolist()) and second == set(ids[3:6].tolist())


def test_runs_and_top_k_keep_ties_in_chunk_id_order() -> None:
    starts, stops = runs(np.array([2, 3, 4, 9, 11, 12]))
    assert starts.tolist() == [2, 9, 11] and stops.tolist() == [5, 10, 13]
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9] + [0.0] * 5000, dtype=np.float32)
    keys = np.arange(scores.size)[::-1].copy()  # later positions have smaller keys
    assert top_k(scores, lambda at: keys[at], 2).tolist() == [4, 2]
    assert top_k(scores, lambda at: keys[at], 4).tolist() == [4, 2, 1, 0]
    assert plan(np.zeros(0, dtype=np.int64), 10).strategy is Strategy.EMPTY


def test_duplicate_vectors_come_back_in_chunk_id_order() -> None:
    vs = VectorStore.create(DIM)
    same = unit(1, 9)
    vs.add(np.array([30, 10, 20]), np.repeat(same, 3, axis=0))
    hits = vs.search(same[0], frozen(np.array([10, 20, 30])), 2)
    assert [h.chunk_id for h in hits] == [10, 20]


def test_saved_layout_makes_each_partners_rows_contiguous(tmp_path: Path) -> None:
    ids, vectors = chunk_ids(3000, 3), unit(3000, 4)
    owner = np.random.default_rng(5).integers(0, 30, ids.size)  # 30 partners, interleaved
    vs = VectorStore.create(DIM)
    vs.add(ids, vectors)
    layout = ids[np.argsort(owner, kind="stable")]
    vs.save(tmp_path, order=layout[:-7])  # ids left out still get saved, last
    loaded = VectorStore.load(tmp_path)
    assert len(loaded) == ids.size
    assert np.array_equal(loaded.vectors(ids[::-1]), vectors[::-1])
    query = unit(1, 8)[0]
    for partner in range(30):
        allowed = frozen(ids[owner == partner])
        chosen = loaded.plan_for(allowed)
        assert chosen.starts.size <= 2  # one run (two for the partner of the last 7)
        assert [h.chunk_id for h in loaded.search(query, allowed, 10)] == \
            brute_force(ids, vectors, query, allowed, 10)
    with pytest.raises(KeyError):
        loaded.vectors(np.array([1, 2], dtype=np.int64))


def test_built_index_lays_each_rule_out_contiguously(access_index) -> None:
    """Through the real build: each partner's allowed rows are at most one run per rule."""
    generation = Generation.open_live(access_index[0])
    access = AccessIndex(generation)
    for partner, rules in {"alpha": 3, "beta": 3, "gamma": 1, "delta": 1}.items():
        allowed = access.allowed_for(Principal("k", partner, False), date(2026, 1, 1))
        chosen = generation.vectors.plan_for(allowed.ids)
        assert chosen.size == len(allowed) and chosen.starts.size <= rules


def test_a_broad_scattered_set_is_packed_within_budget_and_stays_exact(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.store.vectors as vectors_module

    monkeypatch.setattr(vectors_module, "PACK_MIN_ROWS", 500)
    n = 20_000
    ids, vectors = chunk_ids(n, 11), unit(n, 12)
    vs = VectorStore(ids, vectors)
    rng = np.random.default_rng(3)
    sets = [frozen(rng.choice(ids, 2_000, replace=False)) for _ in range(4)]  # 10 % each
    budget = vectors_module.PACK_BUDGET * vectors.nbytes  # room for two of them
    for i, allowed in enumerate(sets):
        for q in range(3):
            query = unit(1, 200 + q)[0]
            got = [h.chunk_id for h in vs.search(query, allowed, 10)]
            assert got == brute_force(ids, vectors, query, allowed, 10)
        assert vs.is_packed(allowed)
        assert 0 < vs.packed_bytes <= budget, i
    assert not vs.is_packed(sets[0])  # the least recently used gave its copy up
    # After losing its copy, it is read by position again, with the same answer.
    query = unit(1, 300)[0]
    assert [h.chunk_id for h in vs.search(query, sets[0], 10)] == \
        brute_force(ids, vectors, query, sets[0], 10)
    # Small or contiguous sets are never packed; a writable array is never cached at all.
    assert not vs.is_packed(frozen(rng.choice(ids, 100, replace=False)))
    assert not vs.is_packed(frozen(ids[:5_000]))
    writable = np.unique(rng.choice(ids, 2_000, replace=False))
    assert not vs.is_packed(writable)
