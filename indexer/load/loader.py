"""Stage 2, load: turn the files of a corpus into documents, or into skips with a reason.

This module only dispatches: each format has its own module under indexer/load/formats/. A bad file
never stops a build: whatever goes wrong becomes a ``Skipped`` with a reason a person can act on,
and every other file is still indexed. A format whose parser is not installed is skipped too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from indexer.load.document import (
    Document,
    LoadOptions,
    LoadResult,
    LoadWarning,
    Page,
    Skipped,
)
from indexer.settings import IndexerSettings

__all__ = ["SUPPORTED", "Document", "LoadOptions", "LoadResult", "LoadWarning", "Page",
           "Skipped", "load_corpus", "load_file", "load_options"]

log = logging.getLogger(__name__)

Loader = Callable[[Path, str, LoadOptions], Iterator[LoadResult]]
# suffix -> the package that parses it (named when it is missing)
FORMATS: dict[str, str] = {
    ".txt": "", ".md": "", ".markdown": "", ".jsonl": "", ".eml": "",
    ".pdf": "pypdf", ".docx": "python-docx", ".pptx": "python-pptx", ".xlsx": "openpyxl",
    ".xlsm": "openpyxl", ".html": "trafilatura", ".htm": "trafilatura",
}
SUPPORTED = set(FORMATS)


def load_options(settings: IndexerSettings, password: str | None = None) -> LoadOptions:
    """The loaders' share of the settings (plus a file's password), picklable for a worker."""
    # OCR stops before the file's parse time limit, so its text pages are still indexed.
    ocr_seconds = min(settings.ocr_seconds, 0.8 * settings.parse_timeout_seconds)
    return LoadOptions(max_file_mb=settings.max_file_mb, password=password, ocr=settings.ocr,
                       ocr_max_pages=settings.ocr_max_pages, ocr_seconds=ocr_seconds,
                       ocr_dpi=settings.ocr_dpi, ocr_languages=settings.ocr_languages,
                       sheet_max_rows=settings.sheet_max_rows,
                       max_unzipped_mb=settings.max_unzipped_mb)


def load_corpus(corpus: Path, files: list[Path], options: LoadOptions) -> Iterator[LoadResult]:
    """Load each file; anything that goes wrong in one file is reported and the rest go on."""
    for path in files:
        rel = path.relative_to(corpus).as_posix()
        try:
            yield from load_file(path, rel, options)
        except Exception as exc:  # one broken file must not lose the others
            yield Skipped(rel, f"could not be read: {type(exc).__name__}: {exc}")


def load_file(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    """One file -> its documents (or skips/warnings); `rel` is its corpus-relative path.

    Never raises for a bad file: a parser's exception becomes a one-line skip. Everything
    yielded is picklable, so this can run in a worker process with a time limit.
    """
    refused = refusal(path, rel, options)
    if refused is not None:
        yield refused
        return
    suffix = path.suffix.lower()
    loader = loader_for(suffix)
    if isinstance(loader, Skipped):
        yield Skipped(rel, loader.reason)
        return
    produced: list[LoadResult] = []
    try:
        for item in loader(path, rel, options):
            produced.append(item)
    except Exception as exc:  # one broken file must not lose the others
        yield Skipped(rel, _reason(suffix, exc))
        return
    yield from produced  # all or nothing: a file that fails half-way yields no document


def refusal(path: Path, rel: str, options: LoadOptions) -> Skipped | None:
    """Why a file is skipped before a byte of it is read (type, kind of file, size), or None.
    A cluster build asks this before sending a file's bytes to a worker."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        return Skipped(rel, f"unsupported file type '{suffix or '(none)'}' "
                            f"(supported: {', '.join(sorted(SUPPORTED))})")
    if not path.is_file():  # a FIFO or device would block the build; a dangling link has no data
        return Skipped(rel, "not a regular file (a dangling link, pipe or device)")
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Skipped(rel, f"could not be read: {exc.strerror or exc}")
    if size == 0:
        return Skipped(rel, "empty file (0 bytes)")
    if size > options.max_file_mb * 1024 * 1024:
        return Skipped(rel, f"file is {size / 1048576:.1f} MB, over the {options.max_file_mb:g} "
                            "MB limit (raise PKS_MAX_FILE_MB to index it)")
    return None


def loader_for(suffix: str) -> Loader | Skipped:
    """The loader of a format, imported only when needed; a missing parser is a skip."""
    try:
        return _import_loader(suffix)
    except ImportError as exc:
        package = FORMATS[suffix] or exc.name
        return Skipped("", f"no parser for {suffix} files is installed ({package}: {exc}); "
                           "install the project's dependencies")


def _import_loader(suffix: str) -> Loader:
    """Each format's module imports its parser; only the formats a corpus has are imported."""
    if suffix == ".pdf":
        from indexer.load.formats.pdf import load_pdf
        return load_pdf
    if suffix == ".docx":
        from indexer.load.formats.docx import load_docx
        return load_docx
    if suffix == ".pptx":
        from indexer.load.formats.pptx import load_pptx
        return load_pptx
    if suffix in (".xlsx", ".xlsm"):
        from indexer.load.formats.xlsx import load_xlsx
        return load_xlsx
    if suffix in (".html", ".htm"):
        from indexer.load.formats.html import load_html
        return load_html
    if suffix == ".eml":
        from indexer.load.formats.email import Attachments, load_eml

        attachments = Attachments(load_file, SUPPORTED)  # attachments come back through here
        return lambda path, rel, options: load_eml(path, rel, options, attachments)
    from indexer.load.formats import text

    return {".jsonl": text.load_jsonl_file, ".txt": text.load_plain}.get(suffix,
                                                                         text.load_markdown)


def _reason(suffix: str, exc: Exception) -> str:
    """One line a person can act on, whatever the parser raised."""
    message = " ".join(str(exc).split())[:300]
    kind = {".pdf": "PDF", ".docx": "Word document", ".pptx": "PowerPoint deck",
            ".xlsx": "Excel workbook", ".xlsm": "Excel workbook", ".eml": "e-mail",
            ".html": "HTML page", ".htm": "HTML page"}.get(suffix, "file")
    return f"corrupt or unreadable {kind}: {type(exc).__name__}: {message}"
