from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexer.embed import Embedder, ModelLoadError


def test_vectors_are_normalised_and_query_path_matches_batch_path(embedder: Embedder) -> None:
    texts = ["solid electrolyte conductivity", "fibre Bragg grating sensors drift", "x" * 3000]
    batch = embedder.embed(texts)
    assert batch.shape == (3, embedder.dim) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    single = np.stack([embedder.embed_query(t) for t in texts])
    assert np.abs(single - batch).max() < 1e-5


def test_query_embedding_is_thread_safe(embedder: Embedder) -> None:
    texts = [f"query {i} " + "word " * (i % 50) for i in range(64)]
    expected = embedder.embed(texts)
    with ThreadPoolExecutor(8) as pool:
        got = np.stack(list(pool.map(embedder.embed_query, texts)))
    assert np.abs(got - expected).max() < 1e-5


def test_unloadable_model_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="cannot load embedding model '/no/such/model'"):
        Embedder("/no/such/model")
