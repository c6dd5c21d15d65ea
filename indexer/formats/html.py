"""HTML (.html, .htm): the main text only, the <title> as title.

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

from indexer.document import Document, LoadOptions, LoadResult, Page, Skipped, sha_text

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
    text = main_text(html)
    if not text.strip():
        yield Skipped(rel, "no main text found in this HTML page")
        return
    title = page_title(html) or path.stem
    yield Document(rel, rel, title, (Page(None, text),), sha_text(text))


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
    extracted = trafilatura.extract(html, include_tables=True, include_comments=False,
                                    include_links=False, include_images=False,
                                    output_format="txt", deduplicate=False)
    if extracted and extracted.strip():
        return extracted.strip()
    return _visible_text(html)


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
