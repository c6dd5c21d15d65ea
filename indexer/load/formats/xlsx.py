"""Excel (.xlsx): one page per sheet (numbered in workbook order, the sheet name as section).

Rows become text that keeps each column's header ("Batch: P-118; Retention: 91.2 %"), read with
openpyxl in read-only mode with cached formula values, so a large workbook streams instead of
being built in memory. A sheet longer than `sheet_max_rows` is cut, with a warning in the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import openpyxl

from indexer.load.document import (
    Document,
    LoadOptions,
    LoadResult,
    LoadWarning,
    Page,
    Skipped,
    content_sha,
)
from indexer.load.formats.office import BadPackage, cell_rows, open_package


def load_xlsx(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    try:
        package = open_package(path, options)
    except BadPackage as exc:
        yield Skipped(rel, exc.reason)
        return
    book = openpyxl.load_workbook(package, read_only=True, data_only=True)
    pages: list[Page] = []
    cut: list[str] = []
    try:
        for number, sheet in enumerate(book.worksheets, start=1):
            rows: list[list[str]] = []
            if hasattr(sheet, "reset_dimensions"):  # stored dimensions are often wrong
                sheet.reset_dimensions()
            for row in sheet.iter_rows(values_only=True):
                if len(rows) >= options.sheet_max_rows:
                    cut.append(sheet.title)
                    break
                cells = [_cell(value) for value in row]
                if any(cells):
                    rows.append(cells)
            lines = cell_rows(rows)
            if lines:
                pages.append(Page(number, f"Sheet: {sheet.title}\n" + "\n".join(lines),
                                  sheet.title))
    finally:
        book.close()
    if cut:
        yield LoadWarning(rel, f"sheet(s) {', '.join(repr(s) for s in cut)} cut after "
                               f"{options.sheet_max_rows} rows (PKS_SHEET_MAX_ROWS); the rest "
                               "of those sheets is not indexed")
    if not pages:
        yield Skipped(rel, "no cell with a value in any sheet")
        return
    title = (book.properties.title or "").strip() or path.stem
    yield Document(rel, rel, title, tuple(pages), content_sha(pages))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()
