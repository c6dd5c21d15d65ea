"""OCR of PDF pages that have no text layer (scans), offline, with Debian's tesseract-ocr.

Tesseract was measured against RapidOCR (rapidocr-onnxruntime, whose wheel ships its models) on
../shared/eval/pdfs/scanned/linn.pdf, a two-column scanned brochure: character error rate 1.0 %
for tesseract against 40 % for RapidOCR (it interleaves the two columns and drops spaces), and
tesseract was twice as fast on 2 cores. `make install` installs it with apt; where it is missing,
scanned pages are reported, never a crash. Pages are rendered with pypdfium2 (PDFium).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexer.load.document import LoadOptions

TESSERACT = "tesseract"


class OcrUnavailable(Exception):
    """No OCR engine on this machine (or its language data is missing)."""


@dataclass
class OcrRun:
    """The text recognised on some pages of one PDF, and the pages left out and why."""

    texts: dict[int, str] = field(default_factory=dict)  # 1-based page number -> text
    not_done: list[int] = field(default_factory=list)
    reason: str = ""  # why pages were left out (page or time limit, engine failure)


def engine_available() -> bool:
    return shutil.which(TESSERACT) is not None


def ocr_pdf_pages(path: Path, numbers: list[int], options: LoadOptions) -> OcrRun:
    """Render each page in `numbers` and recognise its text, within the per-file limits."""
    if not engine_available():
        raise OcrUnavailable("no OCR engine installed (install Debian's tesseract-ocr; "
                             "`make install` does)")
    import pypdfium2  # the PDF renderer: only needed when a page has to be OCR'd

    run = OcrRun()
    deadline = time.monotonic() + options.ocr_seconds
    pdf = pypdfium2.PdfDocument(str(path), password=options.password)
    try:
        for done, number in enumerate(numbers):
            if done >= options.ocr_max_pages:
                run.not_done = numbers[done:]
                run.reason = (f"OCR stopped after {options.ocr_max_pages} page(s) "
                              "(PKS_OCR_MAX_PAGES)")
                break
            left = deadline - time.monotonic()
            if left <= 0:
                run.not_done = numbers[done:]
                run.reason = f"OCR stopped after {options.ocr_seconds:g} s (PKS_OCR_SECONDS)"
                break
            image = pdf[number - 1].render(scale=options.ocr_dpi / 72).to_pil()
            try:
                run.texts[number] = recognise(image, options.ocr_languages, left)
            except subprocess.TimeoutExpired:
                run.not_done = numbers[done:]
                run.reason = f"OCR stopped after {options.ocr_seconds:g} s (PKS_OCR_SECONDS)"
                break
    finally:
        pdf.close()
    return run


def recognise(image: object, languages: str, timeout: float) -> str:
    """Text of one page image (a PIL image), in reading order as tesseract segments it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    done = subprocess.run([TESSERACT, "stdin", "stdout", "-l", languages],
                          input=buffer.getvalue(), capture_output=True, timeout=timeout,
                          env=env, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrUnavailable(f"tesseract failed: {message[-1] if message else done.returncode}")
    return done.stdout.decode("utf-8", "replace").replace("\x0c", "").strip()
