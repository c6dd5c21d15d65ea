"""notebooks/evaluation.ipynb runs top to bottom, on a small sample of SciFact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.environment import EVAL

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "evaluation.ipynb"
SCIFACT = EVAL / "scifact"


@pytest.mark.slow
@pytest.mark.needs_eval("scifact", "corpus.jsonl")
def test_evaluation_notebook_runs_top_to_bottom(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PKS_EVAL_DATA", str(SCIFACT))
    monkeypatch.setenv("PKS_EVAL_QUERIES", "4")
    monkeypatch.setenv("PKS_EVAL_DISTRACTORS", "30")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict[str, object] = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    rows = namespace["rows"]
    assert [r["mode"] for r in rows] == ["hybrid", "dense", "lexical"]  # type: ignore[attr-defined]
    assert all(0 < r["ndcg_at_10"] <= 1 for r in rows)  # type: ignore[attr-defined]
