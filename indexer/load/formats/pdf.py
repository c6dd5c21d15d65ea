"""PDF: the text layer of each page with its page number; pages without one are OCR'd.

Each page is its own `Page`, so a passage cites the page it comes from; the outline (bookmarks),
where there is one, gives each page its section title.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from indexer.load.document import (
    Document,
    LoadOptions,
    LoadResult,
    LoadWarning,
    Page,
    Skipped,
)
from indexer.load.formats.ocr import OcrUnavailable, ocr_pdf_pages
from indexer.store.records import text_sha


def load_pdf(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _decrypt(reader, options.password):
            yield Skipped(rel, "encrypted: no (valid) password configured (name an environment "
                               "variable for it under 'passwords' in access.yaml)")
            return
        page_count = len(reader.pages)
    except (FileNotDecryptedError, DependencyError) as exc:
        yield Skipped(rel, f"encrypted PDF that cannot be opened: {exc}")
        return
    except Exception as exc:
        yield Skipped(rel, f"corrupt or unreadable PDF: {type(exc).__name__}: {exc}")
        return
    texts: dict[int, str] = {}
    failed: list[int] = []
    for number in range(1, page_count + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception:
            failed.append(number)
            continue
        texts[number] = text.replace("\x00", "")
    if failed:
        yield LoadWarning(rel, f"text of page(s) {_numbers(failed)} could not be extracted; "
                               "the other pages are indexed")
    blank = [n for n, t in texts.items() if not t.strip()]
    recognised: dict[int, str] = {}
    ocr_problem = ""
    if blank and options.ocr:
        try:
            run = ocr_pdf_pages(path, blank, options)
        except OcrUnavailable as exc:
            ocr_problem = str(exc)
        except Exception as exc:  # a page PDFium cannot render: the text layer still counts
            ocr_problem = f"OCR failed: {type(exc).__name__}: {exc}"
        else:
            recognised = {n: t for n, t in run.texts.items() if t.strip()}
            if run.not_done:
                yield LoadWarning(rel, f"{run.reason}: page(s) {_numbers(run.not_done)} of "
                                       "this scanned PDF are not indexed")
    sections = _outline_sections(reader)
    pages = [Page(n, recognised.get(n) or texts.get(n, ""), sections.get(n), n in recognised)
             for n in range(1, page_count + 1)]
    pages = [p for p in pages if p.text.strip()]
    # The text runs on across page breaks: chunks may too, so that a break that moves (a
    # paragraph added above it) moves no chunk boundary.
    pages = [replace(p, continued=i > 0) for i, p in enumerate(pages)]
    if not pages:
        why = ocr_problem or ("OCR is turned off (PKS_OCR)" if not options.ocr
                              else "OCR found no text either")
        yield Skipped(rel, f"no extractable text in {page_count} page(s) (scanned or image-only "
                           f"PDF; {why})")
        return
    if ocr_problem:
        yield LoadWarning(rel, f"page(s) {_numbers(blank)} have no text layer and were not "
                               f"OCR'd: {ocr_problem}")
    title = _pdf_title(reader) or path.stem
    yield Document(rel, rel, title, tuple(pages), text_sha("\f".join(p.text for p in pages)))


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:20]))
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


def _decrypt(reader: PdfReader, password: str | None) -> bool:
    """Many PDFs are encrypted only against editing, with an empty user password."""
    for candidate in ("", password) if password else ("",):
        try:
            if reader.decrypt(candidate):
                return True
        except (FileNotDecryptedError, DependencyError, NotImplementedError):
            continue
    return False


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


def _outline_sections(reader: PdfReader) -> dict[int, str]:
    """Page number -> the bookmark path in force on it ("2 Methods > 2.1 Cells"): the last one
    that begins on the page, else the one carried over from an earlier page."""
    starts: list[tuple[int, str]] = []

    def walk(items: list[object], trail: list[str]) -> None:
        last: list[str] = trail
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = str(getattr(item, "title", "") or "").strip()
            try:
                index = reader.get_destination_page_number(item)  # type: ignore[arg-type]
            except Exception:
                continue
            number = index + 1 if index is not None else 0
            last = [*trail, title]
            if number > 0 and title:
                starts.append((number, " > ".join(last)))

    try:
        walk(list(reader.outline), [])
    except Exception:  # a broken outline only costs section names
        return {}
    sections: dict[int, str] = {}
    current: str | None = None
    by_page: dict[int, str] = {}
    for number, name in starts:  # the last section begun on a page is in force after it
        by_page[number] = name
    for number in range(1, len(reader.pages) + 1):
        current = by_page.get(number, current)
        if current:
            sections[number] = current
    return sections
