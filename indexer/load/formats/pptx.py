"""PowerPoint (.pptx): one page per slide, cited by slide number, its title as section.

A slide's text is its title, then every shape in reading order (top to bottom, left to right),
looking inside groups: text boxes, tables (rows that keep their column headers), chart titles,
pictures' alt text; then the speaker notes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE

from indexer.load.document import Document, LoadOptions, LoadResult, Page, Skipped, content_sha
from indexer.load.formats.office import BadPackage, cell_rows, open_package


def load_pptx(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    try:
        package = open_package(path, options)
    except BadPackage as exc:
        yield Skipped(rel, exc.reason)
        return
    deck = pptx.Presentation(package)
    pages: list[Page] = []
    for number, slide in enumerate(deck.slides, start=1):
        title = _title(slide)
        parts = [title] if title else []
        for shape in _reading_order(slide.shapes):
            if text := _shape_text(shape, skip=slide.shapes.title):
                parts.append(text)
        notes = _notes(slide)
        if notes:
            parts.append(f"Speaker notes: {notes}")
        text = "\n\n".join(parts)
        if text.strip():
            pages.append(Page(number, text, title or f"Slide {number}"))
    if not pages:
        yield Skipped(rel, f"no text on any of the {len(deck.slides)} slide(s)")
        return
    deck_title = (deck.core_properties.title or "").strip() or pages[0].section or path.stem
    yield Document(rel, rel, deck_title, tuple(pages), content_sha(pages))


def _title(slide: Any) -> str:
    shape = slide.shapes.title
    if shape is None or not shape.has_text_frame:
        return ""
    return " ".join(shape.text_frame.text.split())


def _reading_order(shapes: Any) -> list[Any]:
    """Top to bottom, then left to right; shapes without a position keep their XML order."""
    indexed = list(enumerate(shapes))
    indexed.sort(key=lambda item: (item[1].top if item[1].top is not None else 0,
                                   item[1].left if item[1].left is not None else 0, item[0]))
    return [shape for _, shape in indexed]


def _shape_text(shape: Any, skip: Any) -> str:
    if skip is not None and shape.shape_id == skip.shape_id:
        return ""
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        texts = [_shape_text(child, skip) for child in _reading_order(shape.shapes)]
        return "\n".join(t for t in texts if t)
    parts: list[str] = []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        parts.append(shape.text_frame.text.strip())
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        parts.append("\n".join(cell_rows(rows)))
    if getattr(shape, "has_chart", False) and shape.has_chart:
        parts.append(_chart_text(shape.chart))
    description = shape._element.xpath("./*[1]/p:cNvPr/@descr")  # alt text of pictures etc.
    if description and description[0].strip():
        parts.append(description[0].strip())
    return "\n".join(p for p in parts if p)


def _chart_text(chart: Any) -> str:
    parts = []
    if chart.has_title and chart.chart_title.has_text_frame:
        parts.append(f"Chart: {chart.chart_title.text_frame.text.strip()}")
    try:
        names = [series.name for plot in chart.plots for series in plot.series if series.name]
        categories = [str(c) for c in chart.plots[0].categories] if len(chart.plots) else []
    except Exception:  # a chart without cached data still has its title
        names, categories = [], []
    if names:
        parts.append("Series: " + ", ".join(names))
    if categories:
        parts.append("Categories: " + ", ".join(categories))
    return "\n".join(parts)


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame.text.strip() if frame is not None else ""
