import numpy as np

from indexer.store.vectors import VectorStore


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_is_exact_within_the_allowed_set_and_never_outside_it(tmp_path) -> None:
    vectors, ids = random_unit(500, 16, 0), np.arange(1000, 1500, dtype=np.int64)
    store = VectorStore.create(16)
    store.add(ids, vectors)
    query = random_unit(1, 16, 1)[0]
    allowed = np.sort(np.random.default_rng(2).choice(ids, 37, replace=False))
    hits = store.search(query, allowed, 10)
    rows = allowed - 1000
    expected = allowed[np.argsort(-(vectors[rows] @ query), kind="stable")][:10]
    assert [h.chunk_id for h in hits] == expected.tolist()
    assert len(store.search(query, allowed, 100)) == 37  # min(k, allowed)
    assert store.search(query, np.zeros(0, dtype=np.int64), 10) == []

    store.save(tmp_path)
    loaded = VectorStore.load(tmp_path)
    assert isinstance(loaded._matrix, np.memmap) or isinstance(loaded._matrix.base, np.memmap)
    assert not loaded._matrix.flags.writeable  # memory-mapped, shared, never written
    assert [h.chunk_id for h in loaded.search(query, allowed, 10)] == expected.tolist()
    assert np.allclose(loaded.vectors(allowed[:3]), vectors[rows[:3]])

    assert store.delete(allowed[:5]) == 5 and len(store) == 495
    assert not {h.chunk_id for h in store.search(query, allowed, 100)} & set(allowed[:5].tolist())
