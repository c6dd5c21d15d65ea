from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder, ModelLoadError
from indexer.settings import IndexerSettings
from tests.conftest import make_access_corpus, shared_embedder

TEXTS = ["solid electrolyte conductivity", "fibre Bragg grating sensors drift", "x" * 3000,
         "The coating line trial measured a wet film thickness of 42 micrometres, and the "
         "dryer ran at 81 degrees with three air knives near the worn slot die lip."]


def test_vectors_are_normalised_and_query_path_matches_batch_path(embedder: Embedder) -> None:
    batch = embedder.embed(TEXTS)
    assert batch.shape == (len(TEXTS), embedder.dim) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-3)
    single = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert np.abs(single - batch).max() < 1e-3


def test_query_embedding_is_thread_safe(embedder: Embedder) -> None:
    texts = [f"query {i} " + "word " * (i % 50) for i in range(64)]
    expected = embedder.embed(texts)
    with ThreadPoolExecutor(8) as pool:
        got = np.stack(list(pool.map(embedder.embed_query, texts)))
    assert np.abs(got - expected).max() < 1e-3


def test_a_busy_pass_on_one_thread_gives_the_vectors_of_two(settings: IndexerSettings) -> None:
    """The server's passes under concurrency run on fewer threads: the same vectors."""
    two = shared_embedder(settings.model, 4, 2, settings.embed_backend,
                          settings.embed_precision, busy_threads=1)
    texts = [*TEXTS, *(f"query {i} " + "word " * i for i in range(12))]
    assert np.abs(two.embed_queries(texts, busy=True) - two.embed_queries(texts)).max() < 1e-5
    assert np.abs(two.embed_queries(TEXTS[:1], busy=True) - two.embed(TEXTS[:1])).max() < 1e-5


def test_default_backend_keeps_the_vectors_of_torch_f32(embedder: Embedder,
                                                         settings: IndexerSettings) -> None:
    """The fast backend is only worth having if it ranks like the reference: every vector
    within a cosine of 0.9999 of PyTorch fp32 (SciFact dense nDCG@10 moved by < 0.005)."""
    reference = Embedder(settings.model, 4, threads=2, backend="torch", precision="f32")
    assert reference.backend == "torch-f32"
    assert embedder.backend.startswith("openvino-")
    cosines = (reference.embed(TEXTS) * embedder.embed(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.9999
    # torch in bf16 is the fallback's fast path: also close, and said so in its name.
    bf16 = Embedder(settings.model, 4, threads=2, backend="torch", precision="bf16")
    assert bf16.backend == "torch-bf16"
    assert (reference.embed(TEXTS) * bf16.embed(TEXTS)).sum(axis=1).min() > 0.999


def test_a_backend_change_re_embeds_instead_of_mixing_vectors(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    first = build(corpus, index, settings, embedder)
    torch_f32 = Embedder(settings.model, settings.batch_size, threads=2, backend="torch",
                         precision="f32")
    switched = build(corpus, index, settings, torch_f32)
    assert (switched.embedded, switched.reused) == (first.chunks, 0)
    again = build(corpus, index, settings, torch_f32)
    assert (again.embedded, again.reused) == (0, first.chunks)


def test_unloadable_model_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="cannot load embedding model '/no/such/model'"):
        Embedder("/no/such/model")
