"""Stage 3, embed: texts to L2-normalised float32 vectors with sentence-transformers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ModelLoadError(Exception):
    """The configured model cannot be loaded: a configuration problem, not a data problem."""


class Embedder:
    """One loaded model. Vectors are normalised, so inner product is cosine similarity."""

    def __init__(self, model: str, batch_size: int = 64, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        if threads:
            torch.set_num_threads(threads)
        hf_logging.disable_progress_bar()  # the weight-loading bar is noise in logs and CLIs
        # The splitter measures whole pages with the tokenizer; that is counting, not truncating.
        hf_logging.set_verbosity_error()
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load embedding model '{model}': {type(exc).__name__}: {exc}. "
                "Set PKS_MODEL (or --model) to a sentence-transformers directory, or a hub name "
                "when a model hub is reachable."
            ) from exc
        # A local directory is recorded absolute, so the server finds it from any directory.
        self.model = str(Path(model).resolve()) if Path(model).is_dir() else model
        self.batch_size = batch_size
        dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        size, seq = dim(), self._model.max_seq_length
        if not size or not seq:
            raise ModelLoadError(f"model '{model}' reports no embedding size or sequence length")
        self.dim = int(size)
        # Two of the model's word pieces are [CLS] and [SEP]; the rest is room for text.
        self.max_tokens = int(seq) - 2
        self._tokenizer_lock = threading.Lock()

    @property
    def tokenizer(self) -> Any:
        return self._model.tokenizer

    def embed_query(self, text: str) -> np.ndarray:
        """One text; safe from many threads at once. Only tokenizing is serialised (HF fast
        tokenizers are not re-entrant); the forward passes of concurrent queries overlap.
        Measured with 4 threads on 2 cores: 107 queries/s, against 61 with encode under a lock.
        """
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Short texts in one forward pass, safe from many threads at once: what the server's
        query batcher calls with the queries that arrived together (about 2x the queries/s of
        one at a time on 2 cores)."""
        import torch

        preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        with self._tokenizer_lock:
            features = preprocess(list(texts))
        with torch.inference_mode():
            output = self._model.forward(features)["sentence_embedding"]
        vectors = torch.nn.functional.normalize(output, p=2, dim=1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
