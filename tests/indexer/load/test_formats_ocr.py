"""OCR of scanned PDFs: ONE real scanned page (CPU is shared), plus the limits, which cost none."""

from __future__ import annotations

import pytest

from benchmarks.ocr_quality import character_error_rate
from indexer.load.loader import Document, LoadOptions, LoadWarning, Skipped, load_file
from tests.environment import EVAL

SCANNED = EVAL / "pdfs" / "scanned"
needs_scans = pytest.mark.needs_eval("pdfs", "scanned", "linn.pdf")
needs_tesseract = pytest.mark.needs_program("tesseract", "apt-get install tesseract-ocr "
                                                         "(make install does it)")
# Measured with benchmarks/ocr_quality.py: 0.0094 at 150 dpi (0.0096 at 200, 0.0098 at 300).
MAX_CER = 0.03


@pytest.mark.slow
@needs_scans
@needs_tesseract
def test_a_scanned_page_is_ocrd_and_marked() -> None:
    results = list(load_file(SCANNED / "linn.pdf", "scanned/linn.pdf", LoadOptions()))
    assert [type(r) for r in results] == [Document], results
    doc = results[0]
    assert isinstance(doc, Document)
    assert [(p.number, p.ocr) for p in doc.pages] == [(1, True)]
    truth = (SCANNED / "linn.txt").read_text(encoding="utf-8")
    assert character_error_rate(doc.pages[0].text, truth) < MAX_CER
    assert "32 Track MIDI Sequence Recorder" in doc.pages[0].text


@needs_scans
def test_ocr_limits_are_reported_not_silent() -> None:
    results = list(load_file(SCANNED / "linn.pdf", "linn.pdf", LoadOptions(ocr_max_pages=0)))
    warning = next(r for r in results if isinstance(r, LoadWarning))
    assert warning.message.startswith("OCR stopped after 0 page(s) (PKS_OCR_MAX_PAGES): page(s) 1")
    skipped = next(r for r in results if isinstance(r, Skipped))
    assert skipped.reason.startswith("no extractable text in 1 page(s)")


@needs_scans
def test_without_an_ocr_engine_a_scan_is_skipped_with_the_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no tesseract on the PATH
    results = list(load_file(SCANNED / "linn.pdf", "linn.pdf", LoadOptions()))
    assert len(results) == 1 and isinstance(results[0], Skipped)
    assert "no OCR engine installed" in results[0].reason


def test_cer_counts_edits_per_reference_character() -> None:
    assert character_error_rate("The  Linn\nSequencer", "The Linn Sequencer") == 0.0
    assert character_error_rate("The Lime Sequencer", "The Linn Sequencer") == 2 / 18
