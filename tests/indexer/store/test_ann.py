"""The approximate plan: an IVF index searched with the allowed rows as its selector, widened
until k allowed results are found and re-scored exactly. Against numpy brute force over the
allowed rows: recall@10 >= 0.95, never an id outside the set, never fewer than min(k, allowed)
results, exact scores; chosen only where the cost model says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import indexer.store.ann as ann
import indexer.store.planner as planner
from indexer.store.ann import approximate_for, bitmap_of
from indexer.store.layout import ANN
from indexer.store.planner import Strategy, plan
from indexer.store.vector_file import VectorFile
from indexer.store.vectors import VectorStore
from tests.indexer.store.test_planner import brute_force, chunk_ids, frozen

DIM, N = 32, 20_000


def clustered(n: int, seed: int, centers: np.ndarray) -> np.ndarray:
    """Points around cluster centres, normalised: neighbours are real, as with embeddings."""
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, len(centers), n)] + \
        0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


CENTERS = np.random.default_rng(0).standard_normal((200, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def approximate_store(tmp_path_factory: pytest.TempPathFactory
                      ) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    """Written as the writer writes (spilled in blocks, IVF built at publish), then loaded."""
    directory = tmp_path_factory.mktemp("ann")
    ids, vectors = chunk_ids(N, 21), clustered(N, 22, CENTERS)
    spill = VectorFile(directory, DIM)
    for start in range(0, N, 997):
        spill.add(ids[start:start + 997], vectors[start:start + 997])
    spill.write(order=ids, ann_min_rows=N)
    assert (directory / ANN).is_file()
    store = VectorStore.load(directory)
    assert store.ann is not None and store.ann.total == N
    return store, ids, vectors


@pytest.fixture()
def no_exact_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 20,000 rows every exact plan is within budget; take the budget away so that the
    cost model compares the approximate plan with the exact ones; and scale the allowed entries
    a first probe must scan to this index (set for ten million chunks, it would probe every
    list of 20,000)."""
    monkeypatch.setattr(planner, "EXACT_BUDGET_US", 0.0)
    monkeypatch.setattr(ann, "MIN_ALLOWED_SCANNED", ann.MIN_ALLOWED_SCANNED * N // 10_000_000)


SHARES = [1.0, 0.3, 0.1, 0.01]


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("layout", ["contiguous", "scattered"])
def test_the_approximate_plan_finds_the_top_10_with_exact_scores(
        approximate_store: tuple[VectorStore, np.ndarray, np.ndarray], no_exact_budget: None,
        share: float, layout: str) -> None:
    store, ids, vectors = approximate_store
    m = int(N * share)
    rng = np.random.default_rng(int(share * 100))
    start = int(rng.integers(0, N - m + 1))
    allowed = frozen(ids[start:start + m] if layout == "contiguous"
                     else rng.choice(ids, m, replace=False))
    recalls = []
    for q, query in enumerate(clustered(40, 300, CENTERS)):
        hits, ran = store.search_planned(query, allowed, 10)
        truth = brute_force(ids, vectors, query, allowed, 10)
        got = [h.chunk_id for h in hits]
        assert len(got) == 10 and set(got) <= set(allowed.tolist()), q
        exact = {int(i): float(s) for i, s in zip(ids, vectors @ query, strict=True)}
        assert all(abs(h.score - exact[h.chunk_id]) < 1e-5 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        recalls.append(len(set(got) & set(truth)) / 10)
        # 10 % contiguous is one run of 2,000 rows here (0.15 ms), cheaper than an IVF search
        # that scans index_share(141 lists) = 21 % of this small index's entries
        if share >= 0.3 or share >= 0.1 and layout == "scattered":
            assert ran is Strategy.APPROXIMATE
    assert np.mean(recalls) >= 0.95


def test_a_narrow_set_is_widened_until_k_are_found(
        approximate_store: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    """Even forced through the IVF, 15 scattered rows give 15 results: probing widens until
    every allowed entry was scanned (and only the lists that hold one are probed), and then
    the answer is the exact one."""
    store, ids, vectors = approximate_store
    assert store.ann is not None
    rows = np.sort(np.random.default_rng(4).choice(N, 15, replace=False))
    query = clustered(1, 5, CENTERS)[0]
    guide = store.ann.approximate(rows, 40).per_list
    assert guide is not None and guide.sum() == 15
    for share in (None, 0.01):  # however little the first probe was asked to scan
        found, probed = store.ann.candidates(query, bitmap_of(rows, N), guide, 40, share)
        assert sorted(found.tolist()) == rows.tolist()
        assert sorted(probed.tolist()) == np.flatnonzero(guide).tolist()
    allowed = frozen(ids[rows])  # written with order=ids: row r holds ids[r]
    hits = store.search(query, allowed, 100)
    assert [h.chunk_id for h in hits] == brute_force(ids, vectors, query, allowed, 100)


def test_the_cost_model_keeps_exact_plans_for_narrow_sets_at_ten_million() -> None:
    total = 10_000_000
    lists = ann.lists_for(total)  # 3,162

    def chosen(rows: np.ndarray, purity: float | None = None) -> Strategy:
        share = rows.size / total
        return plan(rows, total, approximate_for(lists, total, rows.size, 40,
                                                 share if purity is None else purity)).strategy

    everything = np.arange(total, dtype=np.int64)
    assert chosen(everything) is Strategy.APPROXIMATE  # 750 ms exact, 28 ms on the IVF
    assert chosen(np.arange(0, total // 10, dtype=np.int64)) is Strategy.APPROXIMATE  # 75 ms
    assert chosen(np.arange(0, total // 100, dtype=np.int64)) is Strategy.RANGES  # 7.5 ms
    scattered = np.sort(np.random.default_rng(1).choice(total, total // 100, replace=False))
    # 1 % scattered: 25 ms by position, within the goal, where the IVF's recall falls (0.94)
    assert chosen(scattered) is Strategy.ROWS
    assert chosen(scattered[::10]) is Strategy.ROWS  # 0.1 %: 2.5 ms
    # 5 % scattered: 125 ms exact, so the IVF
    wide = np.sort(np.random.default_rng(2).choice(total, total // 20, replace=False))
    assert chosen(wide) is Strategy.APPROXIMATE
    # what a search scans: 4.4 % of the index at 10M (7.9 % at 1M), and for a set whose lists
    # are mostly its own (a partner's documents) as many allowed entries as those lists hold
    assert 0.044 < ann.index_share(lists) < 0.045 and 0.079 < ann.index_share(1000) < 0.08
    spread = approximate_for(lists, total, total // 10, 40, 0.1)
    own = approximate_for(lists, total, total // 10, 40, 0.6)
    assert spread.scanned == pytest.approx(own.scanned)
    assert spread.scanned == pytest.approx(ann.index_share(lists) * total)
    assert own.codes == pytest.approx(6 * spread.codes)
    # at least MIN_ALLOWED_SCANNED allowed entries for a narrow set
    assert approximate_for(lists, total, 60_000, 40, 0.006).codes == ann.MIN_ALLOWED_SCANNED
    # a narrow set too dear to scan exactly within the goal still takes the IVF: 0.3 % of
    # 100M scattered is 75 ms by position
    huge = 100_000_000
    rows = np.sort(np.random.default_rng(3).choice(huge, 300_000, replace=False))
    assert plan(rows, huge, approximate_for(ann.lists_for(huge), huge, rows.size, 40,
                                            0.003)).strategy is Strategy.APPROXIMATE
    assert plan(everything, total).strategy is Strategy.SCAN  # no IVF: exact as before


def test_a_small_generation_has_no_ivf_and_an_old_one_still_loads(tmp_path: Path) -> None:
    ids, vectors = chunk_ids(500, 1), clustered(500, 2, CENTERS)
    spill = VectorFile(tmp_path, DIM)
    spill.add(ids, vectors)
    spill.write(order=None)
    assert not (tmp_path / ANN).exists()
    assert VectorStore.load(tmp_path).ann is None


GROUPS = np.array([0, 6_000, 13_000, 20_000])  # three access groups (rules), in layout order


@pytest.mark.parametrize("layout", ["groups", "group_and_part", "scattered"])
def test_read_by_group_the_ivf_scans_no_entry_outside_the_callers_groups(
        approximate_store: tuple[VectorStore, np.ndarray, np.ndarray], no_exact_budget: None,
        layout: str) -> None:
    """Each access group is a range of rows and each list is in row order, so the IVF reads
    only the ranges of the caller's groups (FAISS counts the codes it scores: exactly the
    caller's groups' entries in the lists it probed), and still finds the top 10."""
    import faiss

    store, ids, vectors = approximate_store
    assert store.ann is not None
    rows = {"groups": np.r_[0:6_000, 13_000:20_000],  # two whole groups
            "group_and_part": np.r_[0:6_000, 6_000:13_000:3],  # a whole one, a third of one
            "scattered": np.sort(np.random.default_rng(8).choice(20_000, 8_000, False))}[layout]
    allowed = frozen(ids[rows])
    store.groups = GROUPS
    try:
        covered = store.ann.coverage(rows, GROUPS)
        of_row = store.ann._lists()[0]
        inside = np.zeros(N, dtype=bool)
        for start, stop in covered.ranges:
            inside[start:stop] = True
        for q, query in enumerate(clustered(30, 400, CENTERS)):
            faiss.cvar.indexIVF_stats.reset()
            found, nprobe = store.ann.candidates_in(query, covered, 40)
            ranked = store.ann._index.quantizer.search(query.reshape(1, -1), store.ann.lists)[1][0]
            probed = ranked[covered.per_list[ranked] > 0][:nprobe]  # lists holding its entries
            scanned = int(inside[np.isin(of_row, probed)].sum())
            assert faiss.cvar.indexIVF_stats.ndis == scanned, q  # no other group's entry
            assert found.size == 40 and bool(np.isin(found, rows).all())
            hits = store.search(query, allowed, 10)
            truth = brute_force(ids, vectors, query, allowed, 10)
            assert len(hits) == 10 and {h.chunk_id for h in hits} <= set(allowed.tolist())
            assert len({h.chunk_id for h in hits} & set(truth)) >= 8, q
        assert store.plan_for(allowed).strategy is Strategy.APPROXIMATE
    finally:
        store.groups = None
