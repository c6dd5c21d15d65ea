"""Word (.docx): paragraphs in reading order, one page per heading section, tables as rows.

Each heading section becomes its own `Page` whose `section` is the heading path ("Results >
Cycling"), so a passage never spans two sections. Tables are rows that keep their column
headers; headers and footers (once per document, not per page), footnotes, endnotes and comments
follow the body as sections of their own. Text in equations (OMML) and text boxes is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import docx
from lxml import etree

from indexer.load.document import Document, LoadOptions, LoadResult, Page, Skipped, content_sha
from indexer.load.formats.office import BadPackage, cell_rows, open_package

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
TEXT_TAGS = {f"{{{W}}}t", f"{{{M}}}t"}
BREAK_TAGS = {f"{{{W}}}br": "\n", f"{{{W}}}cr": "\n", f"{{{W}}}tab": "\t"}
HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
EXTRA_PARTS = (  # (part name pattern, element holding one item, section name)
    (re.compile(r"^/word/(header|footer)\d*\.xml$"), None, "Headers and footers"),
    (re.compile(r"^/word/footnotes\.xml$"), "footnote", "Footnotes"),
    (re.compile(r"^/word/endnotes\.xml$"), "endnote", "Endnotes"),
    (re.compile(r"^/word/comments\.xml$"), "comment", "Comments"),
)


def load_docx(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    try:
        package = open_package(path, options)
    except BadPackage as exc:
        yield Skipped(rel, exc.reason)
        return
    document = docx.Document(package)
    levels = _heading_levels(document)
    pages = _body_sections(document.element.body, levels)
    pages += _extra_parts(document)
    if not pages:
        yield Skipped(rel, "no text in this Word document")
        return
    title = (document.core_properties.title or "").strip() or _first_heading(pages) or path.stem
    yield Document(rel, rel, title, tuple(pages), content_sha(pages))


def _heading_levels(document: object) -> dict[str, int]:
    """Style id -> heading level: "Title" is 0, "Heading N" is N (also in localised Word,
    whose style ids stay "Heading1"), or the style's outline level."""
    levels: dict[str, int] = {}
    for style in document.styles:  # type: ignore[attr-defined]
        style_id, name = style.style_id or "", (style.name or "")
        if name.lower() == "title" or style_id.lower() == "title":
            levels[style_id] = 0
        elif match := (HEADING_STYLE.match(name) or HEADING_STYLE.match(style_id)):
            levels[style_id] = int(match.group(1))
        else:
            outline = style.element.find(f"{{{W}}}pPr/{{{W}}}outlineLvl")
            if outline is not None and outline.get(f"{{{W}}}val", "").isdigit():
                levels[style_id] = int(outline.get(f"{{{W}}}val")) + 1
    return levels


def _body_sections(body: etree._Element, levels: dict[str, int]) -> list[Page]:
    pages: list[Page] = []
    trail: list[tuple[int, str]] = []
    blocks: list[str] = []
    has_body = False

    def flush() -> None:
        if has_body:
            pages.append(Page(None, "\n\n".join(blocks), " > ".join(n for _, n in trail) or None))

    for kind, element in _blocks(body):
        if kind == "tbl":
            rows = cell_rows(_table_rows(element))
            if rows:
                blocks.append("\n".join(rows))
                has_body = True
            continue
        text = paragraph_text(element).strip()
        if not text:
            continue
        level = _paragraph_level(element, levels)
        if level is not None:
            flush()
            if has_body:
                blocks, has_body = [], False
            trail = [(lv, n) for lv, n in trail if lv < level] + [(level, " ".join(text.split()))]
            blocks.append(text)
        else:
            blocks.append(text)
            has_body = True
    flush()
    if not pages and blocks:  # only headings: still text worth finding
        pages.append(Page(None, "\n\n".join(blocks), " > ".join(n for _, n in trail) or None))
    return pages


def _blocks(parent: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """Paragraphs and tables in reading order, looking inside content controls (w:sdt)."""
    for child in parent:
        tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if tag in ("p", "tbl"):
            yield tag, child
        elif tag in ("sdt", "sdtContent", "customXml", "ins", "smartTag"):
            yield from _blocks(child)


def _paragraph_level(p: etree._Element, levels: dict[str, int]) -> int | None:
    style = p.find(f"{{{W}}}pPr/{{{W}}}pStyle")
    if style is not None and style.get(f"{{{W}}}val") in levels:
        return levels[style.get(f"{{{W}}}val", "")]
    outline = p.find(f"{{{W}}}pPr/{{{W}}}outlineLvl")
    if outline is not None and outline.get(f"{{{W}}}val", "").isdigit():
        level = int(outline.get(f"{{{W}}}val", "9")) + 1
        return level if level <= 9 else None
    return None


def paragraph_text(element: etree._Element) -> str:
    """Text runs, equation text, tabs and breaks in document order; deleted text (w:delText)
    and the legacy copy of a drawing (mc:Fallback) are not read."""
    parts: list[str] = []
    for node in element.iter():
        if node.tag in TEXT_TAGS and node.text:
            if not any(a.tag == f"{{{MC}}}Fallback" for a in node.iterancestors()):
                parts.append(node.text)
        elif node.tag in BREAK_TAGS:
            parts.append(BREAK_TAGS[node.tag])
        elif node.tag == f"{{{W}}}p" and node is not element and parts:
            parts.append("\n")
    return "".join(parts)


def _table_rows(table: etree._Element) -> list[list[str]]:
    rows = []
    for tr in table.findall(f"{{{W}}}tr"):
        rows.append([" ".join(paragraph_text(p) for p in tc.iter(f"{{{W}}}p"))
                     for tc in tr.findall(f"{{{W}}}tc")])
    return rows


def _extra_parts(document: object) -> list[Page]:
    """Headers/footers (deduplicated), footnotes, endnotes and comments, one section each."""
    found: dict[str, list[str]] = {}
    parts = sorted(document.part.package.iter_parts(),  # type: ignore[attr-defined]
                   key=lambda part: str(part.partname))
    for part in parts:
        for pattern, item, section in EXTRA_PARTS:
            if pattern.match(str(part.partname)):
                root = etree.fromstring(part.blob, SAFE_XML)
                texts = found.setdefault(section, [])
                for text in _items(root, item):
                    if text not in texts:
                        texts.append(text)
    return [Page(None, "\n\n".join(found[section]), section) for _, _, section in EXTRA_PARTS
            if found.get(section)]


def _items(root: etree._Element, item: str | None) -> Iterator[str]:
    if item is None:  # a header or footer: its paragraphs
        for p in root.iter(f"{{{W}}}p"):
            if text := " ".join(paragraph_text(p).split()):
                yield text
        return
    for node in root.iter(f"{{{W}}}{item}"):
        if node.get(f"{{{W}}}type") in ("separator", "continuationSeparator",
                                        "continuationNotice"):
            continue
        text = " ".join(paragraph_text(node).split())
        author = node.get(f"{{{W}}}author")
        if text:
            yield f"Comment by {author}: {text}" if item == "comment" and author else text


def _first_heading(pages: list[Page]) -> str | None:
    for page in pages:
        if page.section and page.section not in {s for _, _, s in EXTRA_PARTS}:
            return page.section.split(" > ")[0]
    return None
