"""Stage 4, embed: texts to L2-normalised float32 vectors with sentence-transformers.

The model is loaded by sentence-transformers (tokenizer, transformer, pooling); its forward pass
runs on one of two backends: `openvino` (the default: the same modules compiled by OpenVINO,
bf16 where the CPU has it, about 2x the speed, see indexer/embed/openvino_forward.py) or `torch`.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from indexer.settings import IndexerSettings

log = logging.getLogger(__name__)
Backend = Literal["auto", "openvino", "torch"]
Precision = Literal["auto", "f32", "bf16"]
PROBE_TEXT = "partner knowledge search: embedding model fingerprint"


class ModelLoadError(Exception):
    """The configured model cannot be loaded: a configuration problem, not a data problem."""


PACKAGE = "package:"  # a model directory inside an installed Python package: package:NAME/PATH
_PACKAGE_ROOTS = ("site-packages", "dist-packages")


def model_reference(model: str) -> str:
    """How a generation records its model, the same on every host.

    A directory inside an installed Python package (the packaged all-MiniLM-L6-v2) becomes
    `package:NAME/PATH`, which a replica whose virtual environment lives elsewhere resolves
    against its own copy of the package; a hub name, a reference, or any other directory is
    kept as it is (a directory outside a package must then exist at that path on every host).
    """
    if model.startswith(PACKAGE) or not model.startswith("/") and not Path(model).is_dir():
        return model
    parts = Path(model).resolve().parts if Path(model).exists() else Path(model).parts
    for at, part in enumerate(parts[:-1]):
        if part in _PACKAGE_ROOTS:
            return PACKAGE + "/".join(parts[at + 1:])
    return str(Path(model).resolve())


def model_location(reference: str) -> str:
    """Where a recorded model is on this host: what SentenceTransformer loads.

    Generations written before references existed recorded the absolute directory of the
    building host; one inside a package's directory is found in this host's package instead.
    Raises ModelLoadError when the package is not installed here.
    """
    if not reference.startswith(PACKAGE) and (Path(reference).exists()
                                              or not reference.startswith("/")):
        return reference
    recorded = model_reference(reference)
    if not recorded.startswith(PACKAGE):
        return reference  # an absolute directory missing here: SentenceTransformer says so
    name, _, inner = recorded.removeprefix(PACKAGE).partition("/")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the index's model '{recorded}' is in the Python package "
                             f"'{name}', which is not installed here: install it (pip install "
                             f"{name.replace('_', '-')}) in the server's environment")
    return str(Path(list(spec.submodule_search_locations)[0]) / inner)


class Embedder:
    """One loaded model. Vectors are normalised, so inner product is cosine similarity.

    `threads` are the threads of one forward pass; `streams` is how many forward passes may run
    at once (the server's query workers), each on its own `threads`. `busy_threads`, where
    fewer: the threads of a pass asked for with `busy=True` (the server's batches while queries
    arrive concurrently; OpenVINO only): when every core is taken anyway, a pass on one thread
    spends less CPU per query than one that splits the work and waits for the other thread.
    """

    def __init__(self, model: str, batch_size: int = 64, threads: int | None = None,
                 backend: Backend = "auto", precision: Precision = "auto",
                 streams: int = 1, device: str = "cpu", busy_threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        if threads:
            torch.set_num_threads(threads)
        hf_logging.disable_progress_bar()  # the weight-loading bar is noise in logs and CLIs
        # The splitter measures whole pages with the tokenizer; that is counting, not truncating.
        hf_logging.set_verbosity_error()
        try:
            self._model = SentenceTransformer(model_location(model), device=device)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load embedding model '{model}': {type(exc).__name__}: {exc}. "
                "Set PKS_MODEL (or --model) to a sentence-transformers directory, or a hub name "
                "when a model hub is reachable."
            ) from exc
        # What a generation records: the same on every host (model_reference).
        self.model = model_reference(model)
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
        self.device = device
        self.busy_seconds = 0.0
        self._openvino: Any = None
        self._torch_bf16 = False
        self.backend = self._start_backend(backend, precision, threads or 1, streams,
                                           busy_threads)

    def _start_backend(self, backend: Backend, precision: Precision, threads: int,
                       streams: int, busy_threads: int | None = None) -> str:
        """Compile the OpenVINO forward pass, or stay on PyTorch; returns e.g. "openvino-bf16".
        `auto` falls back to PyTorch, with a warning, when OpenVINO cannot take the model.

        On a GPU (a cluster's actor, indexer/cluster/) the pass is PyTorch's on that device, and
        the precision rule is the CPU's: bf16 where the device computes it natively."""
        if self.device != "cpu":
            return self._start_gpu(backend, precision)
        if backend in ("auto", "openvino"):
            try:
                from indexer.embed.openvino_forward import OpenVinoForward, native_bf16

                chosen = precision if precision != "auto" else \
                    ("bf16" if native_bf16() else "f32")
                example = self._features(["an example sentence", "two"])
                self._openvino = OpenVinoForward(self._model, example, chosen, threads, streams,
                                                 busy_threads)
                return f"openvino-{chosen}"
            except Exception as exc:
                if backend == "openvino":
                    raise ModelLoadError(
                        f"cannot run '{self.model}' on OpenVINO: {type(exc).__name__}: {exc}. "
                        "Set PKS_EMBED_BACKEND=torch.") from exc
                log.warning("OpenVINO cannot run %s (%s); embedding with PyTorch", self.model,
                            exc)
        self._torch_bf16 = precision == "bf16"
        return f"torch-{'bf16' if self._torch_bf16 else 'f32'}"

    def _start_gpu(self, backend: Backend, precision: Precision) -> str:
        import torch

        if backend == "openvino":
            raise ModelLoadError(f"OpenVINO runs on the CPU; on {self.device} set "
                                 "PKS_EMBED_BACKEND=auto or torch")
        self._torch_bf16 = precision == "bf16" or (
            precision == "auto" and torch.cuda.is_bf16_supported())
        return f"torch-{self.device.split(':')[0]}-{'bf16' if self._torch_bf16 else 'f32'}"

    @property
    def tokenizer(self) -> Any:
        return self._model.tokenizer

    def _features(self, texts: Sequence[str]) -> dict[str, Any]:
        """Token ids and masks, padded to the longest text and cut at the model's length.
        Serialised: HF fast tokenizers are not re-entrant."""
        preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        with self._tokenizer_lock:
            return dict(preprocess(list(texts)))

    def embed_queries(self, texts: Sequence[str], busy: bool = False) -> np.ndarray:
        """Texts in one forward pass, safe from many threads at once: what the server's query
        batcher calls with the queries that arrived together (`busy` while they arrive
        concurrently), and `embed` per batch."""
        import torch

        features = self._features(texts)
        if self._openvino is not None:
            return self._openvino({k: v.numpy() for k, v in features.items()
                                   if isinstance(v, torch.Tensor)}, busy)
        features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                    for k, v in features.items()}
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], torch.bfloat16,
                                                    enabled=self._torch_bf16):
            output = self._model.forward(features)["sentence_embedding"].float()
        vectors = torch.nn.functional.normalize(output, p=2, dim=1)
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """One text; safe from many threads at once (only tokenizing is serialised)."""
        return self.embed_queries([text])[0]

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Many texts in batches of similar length (less padding), returned in input order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = range(0, len(order), self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        for first in batches:
            rows = order[first:first + self.batch_size]
            out[rows] = self.embed_queries([texts[i] for i in rows])
        return out

    def fingerprint(self) -> str:
        """Tells whether stored vectors came from the same model weights and the same backend
        and precision (bf16 moves vectors by ~1e-4), not just the same model name."""
        vec = self.embed([PROBE_TEXT])[0]
        return self.backend + ":" + ",".join(f"{x:.4f}" for x in vec[:8])

    def embed_blocks(self, blocks: Iterable[Sequence[str]],
                     done: Callable[[int], None] = lambda n: None) -> Iterator[np.ndarray]:
        """Each block's vectors in turn (the build's way to ask; a cluster answers the same).
        `busy_seconds` adds up the time spent in the model."""
        for texts in blocks:
            started = time.perf_counter()
            vectors = self.embed(texts) if texts else np.zeros((0, self.dim), np.float32)
            self.busy_seconds += time.perf_counter() - started
            done(len(texts))
            yield vectors


def embedder_for(settings: IndexerSettings, device: str = "cpu") -> Embedder:
    """The indexer's embedder as its settings describe it (model, batch, threads, backend)."""
    return Embedder(settings.model, settings.batch_size, settings.torch_threads,
                    settings.embed_backend, settings.embed_precision, device=device)
