"""HTML (.html, .htm): the main text only, one page per heading section, the <title> as title.

trafilatura finds the main content and drops navigation, sidebars, scripts, styles, cookie
banners and footers (measured on ../shared/eval/office/: the Wikipedia page keeps its article
and loses "move to sidebar" and the account prompt). A page too short for its heuristics falls
back to the visible text without scripts, styles and navigation. Bytes are decoded with the
charset the page declares (BOM, then <meta charset>), UTF-8 when it declares none.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import trafilatura
from lxml import etree

from indexer.load.document import Document, LoadOptions, LoadResult, Page, Skipped, content_sha
from indexer.load.formats.office import cell_rows

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
BOILERPLATE = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form",
               "template", "svg", "button")


def load_html(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    raw = path.read_bytes()
    if b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        yield Skipped(rel, "looks like a binary file (contains NUL bytes), not an HTML page")
        return
    html = decode_html(raw)
    if not html.strip():
        yield Skipped(rel, "no text (only whitespace)")
        return
    pages = main_sections(html)
    if not pages:
        yield Skipped(rel, "no main text found in this HTML page")
        return
    title = page_title(html) or path.stem
    yield Document(rel, rel, title, pages, content_sha(pages))


def decode_html(raw: bytes) -> str:
    """A byte-order mark wins, then the declared charset, then UTF-8, then Windows-1252
    (what browsers assume for undeclared legacy pages)."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(encoding, "replace")
    declared = META_CHARSET.search(raw[:8192])
    if declared:
        try:
            return raw.decode(codecs.lookup(declared.group(1).decode("ascii")).name, "replace")
        except LookupError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def main_text(html: str) -> str:
    """The page's main content as plain text (tables kept as rows)."""
    return "\n\n".join(page.text for page in main_sections(html))


def main_sections(html: str) -> tuple[Page, ...]:
    """The main content, one page per heading section ("History > 1972-1985: Founding")."""
    extracted = trafilatura.extract(html, include_tables=True, include_comments=False,
                                    include_links=False, include_images=False,
                                    output_format="xml", deduplicate=False)
    main = _parse_xml(extracted).find("main") if extracted else None
    pages: list[Page] = []
    trail: list[tuple[int, str]] = []
    blocks: list[str] = []
    for element in main if main is not None else ():
        if element.tag == "head":
            if any(not b.startswith("\x00") for b in blocks):
                pages.append(_page(blocks, trail))
                blocks = []
            rend = re.fullmatch(r"h([1-6])", element.get("rend", ""))
            level = int(rend.group(1)) if rend else 7
            name = " ".join("".join(element.itertext()).split())
            trail = [(lv, n) for lv, n in trail if lv < level] + [(level, name)]
            blocks.append("\x00" + name)  # a heading: kept as text, but not body
        elif text := _block_text(element):
            blocks.append(text)
    if blocks:
        pages.append(_page(blocks, trail))
    pages = [p for p in pages if p.text.strip()]
    if pages:
        return tuple(pages)
    visible = _visible_text(html)
    return (Page(None, visible),) if visible else ()


def _parse_xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False,
                                                                  no_network=True))


def _page(blocks: list[str], trail: list[tuple[int, str]]) -> Page:
    text = "\n\n".join(b.lstrip("\x00") for b in blocks)
    return Page(None, text, " > ".join(n for _, n in trail) or None)


def _block_text(element: etree._Element) -> str:
    """A paragraph, list, table, quote or code block of trafilatura's XML as plain text."""
    if element.tag == "table":
        rows = list(element.iter("row"))
        texts = [[" ".join("".join(cell.itertext()).split()) for cell in row.iter("cell")]
                 for row in rows]
        header = rows[0].findall("cell") if rows else []
        if len(header) >= 2 and all(c.get("role") == "head" for c in header):
            return "\n".join(cell_rows(texts))  # a header row: keep it with every value
        # no header row (an infobox): each row reads "key: value"
        return "\n".join(": ".join(c for c in row if c) for row in texts if any(row))
    if element.tag == "list":
        return "\n".join("- " + " ".join("".join(item.itertext()).split())
                         for item in element.iter("item"))
    if element.tag == "code":
        return "".join(element.itertext()).strip()
    return " ".join("".join(element.itertext()).split())


def _visible_text(html: str) -> str:
    try:
        root = lxml.html.document_fromstring(html)
    except Exception:  # lxml refuses an empty or odd document: no text then
        return ""
    for element in root.xpath("|".join(f"//{tag}" for tag in BOILERPLATE)):
        element.drop_tree()
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def page_title(html: str) -> str | None:
    try:
        root = lxml.html.document_fromstring(html)
    except Exception:
        return None
    title = root.findtext(".//title")
    return " ".join(title.split()) if title and title.strip() else None
