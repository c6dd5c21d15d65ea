"""What the tests need from the machine besides the virtual environment: the evaluation data
beside the checkout (../shared/eval), Debian's tesseract and chromium.

Locally a missing one skips the tests that need it, saying what to install; under CI=true it
fails them, so a green CI never hides an untested page, OCR path or file set. Tests declare
their needs with markers, checked before each test runs (tests/conftest.py):

    @pytest.mark.needs_eval("pdfs", "scanned", "linn.pdf")
    @pytest.mark.needs_program("tesseract", "apt-get install tesseract-ocr")
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/eval beside the checkout (a git worktree one level deeper looks one further up).
EVAL = next((p for p in (ROOT.parent / "shared" / "eval", ROOT.parent.parent / "shared" / "eval")
             if p.is_dir()), ROOT.parent / "shared" / "eval")
CHROMIUM = Path("/usr/bin/chromium")


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(available: bool, what: str, install: str) -> None:
    """Go on if `available`; else skip (locally) or fail (CI) with what to install."""
    if available:
        return
    message = f"{what} is missing: {install}"
    if on_ci():
        pytest.fail(f"{message} (CI=true: a missing dependency fails, it is not skipped)",
                    pytrace=False)
    pytest.skip(message)


def check_needs(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_eval"):
        path = EVAL.joinpath(*mark.args)
        require(path.exists(), str(path), "the evaluation data beside the checkout "
                                          "(../shared/eval, read in place, never copied)")
    for mark in item.iter_markers("needs_program"):
        program, install = mark.args
        found = Path(program).is_file() if program.startswith("/") else shutil.which(program)
        require(bool(found), program, install)
