"""Every benchmark still imports: a moved or renamed module breaks a script that no test runs,
and mypy checks only the packages (`make lint`). The scripts run nothing on import (their work
is under `if __name__ == "__main__"`), so importing one costs what its imports cost."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_benchmark_imports(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.__doc__, f"benchmarks/{name}.py says in its docstring what it measures"
