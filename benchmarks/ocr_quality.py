"""OCR quality and speed on a real scan: character error rate of ../shared/eval/pdfs/scanned/
linn.pdf (a two-column 1985 brochure, no text layer) against its transcription linn.txt.

    .venv/bin/python benchmarks/ocr_quality.py [--dpi 150 200] [--threads 1]

Runs the indexer's own PDF loader (tesseract through indexer/load/formats/ocr.py) at each
resolution, prints one JSON object per run and writes them to benchmarks/results/ocr_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import RESULTS, ROOT, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.load.loader import Document, LoadOptions, load_file  # noqa: E402

SCANNED = ROOT.parent / "shared" / "eval" / "pdfs" / "scanned"


def normalise(text: str) -> str:
    """Compare characters, not layout: NFKC, one space for any run of whitespace."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row at a time (O(len(a) * len(b)) but vectorised)."""
    if not a or not b:
        return len(a) or len(b)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    previous = steps.copy()
    source = np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32)
    for i, code in enumerate(source, start=1):
        substitute = previous[:-1] + (target != code)
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[1:] + 1, substitute)
        # insertions: current[j] = min(current[j], current[j-1] + 1), as a running minimum
        current = np.minimum.accumulate(current - steps) + steps
        previous = current
    return int(previous[-1])


def character_error_rate(recognised: str, truth: str) -> float:
    """Edits needed to turn the OCR output into the transcription, per transcription char."""
    reference = normalise(truth)
    return edit_distance(normalise(recognised), reference) / max(len(reference), 1)


def measure(pdf: Path, truth: str, dpi: int) -> dict[str, object]:
    started = time.perf_counter()
    results = list(load_file(pdf, pdf.name, LoadOptions(ocr_dpi=dpi, ocr_seconds=600)))
    seconds = time.perf_counter() - started
    doc = next(r for r in results if isinstance(r, Document))
    text = "\n".join(p.text for p in doc.pages)
    return {"file": pdf.name, "dpi": dpi, "pages": len(doc.pages),
            "ocr_pages": sum(p.ocr for p in doc.pages),
            "cer": round(character_error_rate(text, truth), 4),
            "seconds": round(seconds, 2), "pages_per_second": round(len(doc.pages) / seconds, 3),
            "threads": os.environ.get("OMP_THREAD_LIMIT", "1"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, nargs="+", default=[150, 200])
    parser.add_argument("--threads", default="1", help="tesseract threads (OMP_THREAD_LIMIT)")
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = args.threads
    pdf = SCANNED / "linn.pdf"
    if not pdf.is_file():
        sys.exit(f"{pdf} not found: the OCR benchmark needs ../shared/eval/pdfs/scanned/")
    truth = (SCANNED / "linn.txt").read_text(encoding="utf-8")
    rows = []
    for dpi in args.dpi:
        row = measure(pdf, truth, dpi)
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_results(RESULTS / "ocr_quality.json", cpu(), rows)


if __name__ == "__main__":
    main()
