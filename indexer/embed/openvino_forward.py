"""The model's forward pass compiled by OpenVINO: about 2x the chunks/s of PyTorch here.

The sentence-transformers model (its transformer, pooling and normalisation modules, loaded as
usual) is converted in memory with `openvino.convert_model` and compiled for the CPU. On a CPU
with native bf16 (AVX512-BF16 or AMX) it runs in bf16 with fp32 accumulation: measured on this
machine's EPYC, 2 threads, SciFact abstracts in batches of 16, PyTorch fp32 42.1 ms per text,
OpenVINO fp32 37.7 ms, OpenVINO bf16 20.9 ms; vectors keep a cosine of at least 0.99997 to
PyTorch fp32 (`benchmarks/embed_speed.py`). Why OpenVINO and not ONNX Runtime: ORT has no bf16
CPU kernels, and its int8 moved query vectors to a cosine of 0.987.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

# OpenVINO's model converter reports usage to Google Analytics from a forked process unless the
# user opted out in ~/intel or CI=true. A partner-search process must not phone home, and the
# forked sender outlives a killed build holding its inherited lock (the crash test's flake).
# The converter falls back to its own no-op stub when the telemetry package cannot be imported.
if "openvino_telemetry" not in sys.modules:
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]

# Inputs a sentence-transformers text model may take; the tokenizer decides which it returns.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def native_bf16() -> bool:
    """True when the CPU computes bf16 itself; elsewhere bf16 is emulated and slower."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoForward:
    """features (token ids and masks) -> L2-normalised sentence embeddings, float32.

    One compiled model, and a second one on `busy_threads` where that is fewer threads: the
    server's passes while queries arrive concurrently (`busy=True`). A pass takes an idle infer
    request of its model (or makes one), so any thread may run a pass, concurrent passes never
    share a request (`streams` of them run without waiting on each other), and requests are
    as many as passes that ever ran at once, not one per calling thread.
    """

    def __init__(self, model: Any, features: dict[str, Any], precision: str, threads: int,
                 streams: int = 1, busy_threads: int | None = None) -> None:
        import openvino as ov
        import torch

        names = [name for name in INPUTS if name in features]

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                out = self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]
                return torch.nn.functional.normalize(out, p=2, dim=1)

        example = tuple(features[name] for name in names)
        with warnings.catch_warnings(), torch.no_grad():
            # Tracing notes that shape checks become constants: they hold for every input.
            warnings.simplefilter("ignore")
            converted = ov.convert_model(Wrapped().eval(), example_input=example)
        for port, name in zip(converted.inputs, names, strict=True):
            port.get_tensor().set_names({name})
        self.names = names

        def compiled(per_pass: int) -> Any:
            return ov.Core().compile_model(converted, "CPU", {
                "INFERENCE_PRECISION_HINT": precision,
                "INFERENCE_NUM_THREADS": max(1, per_pass * streams),
                "NUM_STREAMS": max(1, streams),
            })

        self._compiled = compiled(threads)
        self._busy = compiled(busy_threads) if busy_threads and busy_threads < threads \
            else self._compiled
        self._idle: dict[int, list[Any]] = {id(self._compiled): [], id(self._busy): []}

    def __call__(self, features: dict[str, Any], busy: bool = False) -> np.ndarray:
        model = self._busy if busy else self._compiled
        idle = self._idle[id(model)]
        try:
            request = idle.pop()  # atomic: no two passes take the same request
        except IndexError:
            request = model.create_infer_request()
        try:
            inputs = {name: np.asarray(features[name], dtype=np.int64) for name in self.names}
            result = request.infer(inputs)
            return np.array(result[0], dtype=np.float32)  # a copy: the request reuses its buffer
        finally:
            idle.append(request)
