"""Plain text, Markdown (one page per heading section) and BEIR-style JSONL exports, in UTF-8 or
a legacy encoding told by indexer.load.formats.encoding (or chosen by the corpus where it
cannot be told)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from indexer.load.document import Document, LoadOptions, LoadResult, LoadWarning, Page, Skipped
from indexer.load.formats.encoding import Fallback, UndecodableText, decode
from indexer.store.records import text_sha

HEADING_RE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)
ATX_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")


def read_text(path: Path, rel: str, options: LoadOptions) -> tuple[str | None, list[LoadResult]]:
    """The file's text, or None and why it is skipped; a legacy encoding assumed is a warning,
    so that the build report says which one was, and why (detected, or the corpus's choice
    between the readings detection left)."""
    try:
        decoded = decode(path.read_bytes(), Fallback(options.encoding, options.encoding_source))
    except UndecodableText as exc:
        return None, [Skipped(rel, str(exc))]
    if decoded.encoding is None:
        return decoded.text, []
    if decoded.candidates:
        ruled = options.encoding_source.startswith("access.yaml rule")
        hint = "" if ruled else ("; if that is wrong, name its encoding on its access.yaml rule "
                                 "('encoding:')")
        return decoded.text, [LoadWarning(
            rel, f"not UTF-8, and detection cannot tell its encoding "
                 f"({', '.join(decoded.candidates)} read it differently): read as "
                 f"{decoded.encoding}, {options.encoding_source}{hint}")]
    return decoded.text, [LoadWarning(rel, f"not UTF-8: read as {decoded.encoding} "
                                           "(detected by chardet)")]


def load_text(path: Path, rel: str, markdown: bool,
              options: LoadOptions) -> Iterator[LoadResult]:
    text, notes = read_text(path, rel, options)
    yield from notes
    if text is None:
        return
    if not text.strip():
        yield Skipped(rel, "no text (only whitespace)")
        return
    title = path.stem
    if markdown and (heading := HEADING_RE.search(text)):
        title = heading.group(1)
    pages = markdown_sections(text) if markdown else (Page(None, text),)
    yield Document(rel, rel, title, pages, text_sha(text))


def markdown_sections(text: str) -> tuple[Page, ...]:
    """One page per heading section, its heading path ("Results > Cycling") as `section`, so a
    passage never mixes two sections and cites the one it comes from. A heading with no text of
    its own before the next heading is kept with that next section rather than left alone."""
    sections: list[tuple[list[str], list[str]]] = []  # (heading path, lines)
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        if FENCE_RE.match(line):
            in_fence = not in_fence
        match = None if in_fence else ATX_RE.match(line.rstrip("\n"))
        if match:
            if any(ln.strip() and not ATX_RE.match(ln.rstrip("\n")) for ln in lines):
                sections.append(([name for _, name in path], lines))
                lines = []
            level = len(match.group(1))
            path = [(lv, name) for lv, name in path if lv < level] + [(level, match.group(2))]
        lines.append(line)
    sections.append(([name for _, name in path], lines))
    pages = [Page(None, "".join(body), " > ".join(heads) or None)
             for heads, body in sections if "".join(body).strip()]
    return tuple(pages) or (Page(None, text),)


def load_jsonl(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    """One BEIR-style record per line; a bad line is skipped, the others are kept."""
    content, notes = read_text(path, rel, options)
    yield from notes
    if content is None:
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
        yield Document(doc_id, rel, title or doc_id, (Page(None, text),), text_sha(text))
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


def load_plain(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    return load_text(path, rel, False, options)


def load_markdown(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    return load_text(path, rel, True, options)


def load_jsonl_file(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    return load_jsonl(path, rel, options)
