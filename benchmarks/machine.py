"""What a benchmark prints about the machine it ran on: figures are ratios to a reference
measured in the same run, and these say which CPU (and which of its instructions) they hold for."""

from __future__ import annotations

import os
from pathlib import Path

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def cpu() -> dict[str, object]:
    """The CPU model, the core count, the flags that decide the embedding's speed (bf16 needs
    avx512_bf16 or AMX), and the load average at the time."""
    text = Path("/proc/cpuinfo").read_text()
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in lines
                      if line.startswith("flags")), []))
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in FLAGS if f in flags],
            "load_average": round(os.getloadavg()[0], 2)}
