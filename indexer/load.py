"""Stage 1, load: turn the files of a corpus into documents, or into skips with a reason.

A bad file never stops a build: it becomes a ``Skipped`` with a reason a person can act on, and
every other file is still indexed. Page numbers of PDFs are kept so passages can cite them.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

log = logging.getLogger(__name__)

SUPPORTED = {".pdf", ".txt", ".md", ".markdown", ".jsonl"}
HEADING_RE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Page:
    """A unit of a document that no chunk straddles: a PDF page, a slide, a sheet, a section.

    `number` is what a citation calls a page (PDF page, slide number, sheet number); `section`
    is the heading path, slide title or sheet name; `ocr` marks text recognised from an image.
    """

    number: int | None  # 1-based PDF page / slide / sheet; None for formats without pages
    text: str
    section: str | None = None
    ocr: bool = False


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: str  # relative to the corpus root, '/'-separated: what access rules match
    title: str
    pages: tuple[Page, ...]
    content_sha: str  # of the extracted text: lets a re-index tell unchanged documents apart


@dataclass(frozen=True)
class Skipped:
    path: str  # relative path, with ':LINE' for one record of a JSONL file
    reason: str


@dataclass(frozen=True)
class LoadWarning:
    path: str
    message: str


LoadResult = Document | Skipped | LoadWarning


@dataclass(frozen=True)
class LoadOptions:
    """What a loader needs besides the file; picklable, so a file can be parsed in a worker."""

    max_file_mb: float = 100.0
    password: str | None = None  # from the env variable access.yaml names for this file


def load_corpus(corpus: Path, files: list[Path], options: LoadOptions) -> Iterator[LoadResult]:
    """Load each file; anything that goes wrong in one file is reported and the rest go on."""
    for path in files:
        rel = path.relative_to(corpus).as_posix()
        try:
            yield from load_file(path, rel, options)
        except Exception as exc:  # one broken file must not lose the others
            yield Skipped(rel, f"could not be read: {type(exc).__name__}: {exc}")


def load_file(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    """One file -> its documents (or skips/warnings); `rel` is its corpus-relative path."""
    max_file_mb = options.max_file_mb
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        yield Skipped(rel, f"unsupported file type '{suffix or '(none)'}' "
                           f"(supported: {', '.join(sorted(SUPPORTED))})")
        return
    if not path.is_file():  # a FIFO or device would block the build; a dangling link has no data
        yield Skipped(rel, "not a regular file (a dangling link, pipe or device)")
        return
    size = path.stat().st_size
    if size == 0:
        yield Skipped(rel, "empty file (0 bytes)")
        return
    if size > max_file_mb * 1024 * 1024:
        yield Skipped(rel, f"file is {size / 1048576:.1f} MB, over the {max_file_mb:g} MB limit "
                           "(raise PKS_MAX_FILE_MB to index it)")
        return
    if suffix == ".pdf":
        yield from _load_pdf(path, rel, options.password)
    elif suffix == ".jsonl":
        yield from _load_jsonl(path, rel)
    else:
        yield from _load_text(path, rel, markdown=suffix in {".md", ".markdown"})


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16 when a BOM says so; anything else is refused."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    if b"\x00" in raw:
        raise ValueError("looks like a binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8"
        ) from None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load_text(path: Path, rel: str, markdown: bool) -> Iterator[LoadResult]:
    try:
        text = _decode(path.read_bytes())
    except ValueError as exc:
        yield Skipped(rel, str(exc))
        return
    if not text.strip():
        yield Skipped(rel, "no text (only whitespace)")
        return
    title = path.stem
    if markdown and (heading := HEADING_RE.search(text)):
        title = heading.group(1)
    yield Document(rel, rel, title, (Page(None, text),), _sha(text))


def _load_pdf(path: Path, rel: str, password: str | None) -> Iterator[LoadResult]:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _decrypt(reader, password):
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
    pages: list[Page] = []
    failed: list[int] = []
    for number in range(1, page_count + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception:
            failed.append(number)
            continue
        text = text.replace("\x00", "")
        if text.strip():
            pages.append(Page(number, text))
    if failed:
        yield LoadWarning(rel, f"text of page(s) {', '.join(map(str, failed))} could not be "
                            "extracted; the other pages are indexed")
    if not pages:
        yield Skipped(rel, f"no extractable text in {page_count} page(s) (scanned or image-only "
                           "PDF? OCR is not supported)")
        return
    title = _pdf_title(reader) or path.stem
    yield Document(rel, rel, title, tuple(pages), _sha("\f".join(p.text for p in pages)))


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


def _load_jsonl(path: Path, rel: str) -> Iterator[LoadResult]:
    """One BEIR-style record per line; a bad line is skipped, the others are kept."""
    try:
        content = _decode(path.read_bytes())
    except ValueError as exc:
        yield Skipped(rel, str(exc))
        return
    seen: set[str] = set()
    records = 0
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{rel}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Skipped(where, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        problem = _record_problem(record)
        if problem:
            yield Skipped(where, problem)
            continue
        doc_id = str(record["_id"]).strip()
        if doc_id in seen:
            yield Skipped(where, f"duplicate _id '{doc_id}' in this file")
            continue
        seen.add(doc_id)
        title = (record.get("title") or "").strip()
        body = record.get("text") or ""
        # BEIR's convention: title and text as one passage, so a title never stands alone.
        text = f"{title} {body}" if title and body.strip() else (title or body)
        records += 1
        yield Document(doc_id, rel, title or doc_id, (Page(None, text),), _sha(text))
    if records == 0 and not seen:
        yield Skipped(rel, "no usable records (each line needs a JSON object with _id and text)")


def _record_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "record is not a JSON object"
    doc_id = record.get("_id")
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or not str(doc_id).strip():
        return "missing or empty '_id'"
    for field in ("title", "text"):
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"'{field}' must be a string"
    if not (record.get("text") or "").strip() and not (record.get("title") or "").strip():
        return f"record '{doc_id}' has no text"
    return None
