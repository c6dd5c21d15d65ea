"""Parse throughput per format: files/s, pages/s and MB/s of the load stage alone.

    .venv/bin/python benchmarks/parse_speed.py [--min-seconds 1.0] [--ocr]

Reads ../shared/eval/office, ../shared/eval/pdfs and the Office files of corpora/demo through
indexer.load.loader.load_file, exactly as a build does (one file at a time, in this process). A
"page" is what the format cites: a PDF page, a slide, a sheet, a Word or Markdown heading
section, one HTML page or e-mail. Scanned PDFs are parsed without OCR unless --ocr is given (OCR
speed is measured by benchmarks/ocr_quality.py). Prints JSON per format and writes
benchmarks/results/parse_speed.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import RESULTS, ROOT, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.load.loader import SUPPORTED, Document, LoadOptions, load_file  # noqa: E402

FORMAT = {".htm": "html", ".markdown": "md", ".xlsm": "xlsx"}  # one row per format
SOURCES = [ROOT.parent / "shared" / "eval" / "office", ROOT.parent / "shared" / "eval" / "pdfs",
           ROOT / "corpora" / "demo"]


def files_by_format() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    for source in SOURCES:
        if not source.is_dir():
            print(f"note: {source} not found, left out", file=sys.stderr)
            continue
        for path in sorted(source.rglob("*")):
            suffix = path.suffix.lower()
            if path.is_file() and suffix in SUPPORTED and suffix not in {".txt", ".jsonl"}:
                found[FORMAT.get(suffix, suffix).lstrip(".")].append(path)
    return found


def time_file(path: Path, options: LoadOptions, min_seconds: float) -> tuple[float, int, bool]:
    """(seconds per parse, pages, parsed into a document) over enough repeats to be stable."""
    list(load_file(path, path.name, options))  # warm-up: imports of the parser, file cache
    runs, started, pages, ok = 0, time.perf_counter(), 0, False
    while True:
        results = list(load_file(path, path.name, options))
        runs += 1
        docs = [r for r in results if isinstance(r, Document)]
        pages, ok = sum(len(d.pages) for d in docs), bool(docs)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or runs >= 200:
            return elapsed / runs, pages, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="repeat each file's parse for at least this long")
    parser.add_argument("--ocr", action="store_true", help="OCR scanned PDF pages too")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # pypdf's complaints about the broken test PDFs
    options = LoadOptions(ocr=args.ocr)
    rows = []
    for fmt, paths in sorted(files_by_format().items()):
        seconds = megabytes = 0.0
        pages = parsed = 0
        for path in paths:
            per_parse, n_pages, ok = time_file(path, options, args.min_seconds)
            seconds += per_parse
            megabytes += path.stat().st_size / 1048576
            pages += n_pages
            parsed += ok
        row = {"format": fmt, "files": len(paths), "parsed": parsed, "pages": pages,
               "megabytes": round(megabytes, 2), "seconds": round(seconds, 3),
               "files_per_second": round(len(paths) / seconds, 1),
               "pages_per_second": round(pages / seconds, 1),
               "mb_per_second": round(megabytes / seconds, 2), "ocr": args.ocr,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_results(RESULTS / "parse_speed.json", cpu(), rows)


if __name__ == "__main__":
    main()
