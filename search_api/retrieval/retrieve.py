"""Retrieve: the caller's best passages, merged and packed into a token budget for a chat bot.

It runs the one search path (search.search, within the caller's allowed set), merges hits that
are neighbouring chunks of one document into one passage, numbers the passages with a citation
each, and packs them, best first, into a ready-to-paste `context` whose token count, measured
with the embedding model's own tokenizer, never exceeds the budget.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from indexer.embed.embedder import Embedder
from indexer.store.records import Passage
from search_api.access.allowed import AllowedSet
from search_api.retrieval.live import LoadedIndex
from search_api.retrieval.search import search
from search_api.retrieval.stitching import Hit, group_text

MIN_CUT_TOKENS = 16  # a passage cut shorter than this is noise: stop packing instead
ELLIPSIS = " …"
_LABELS = {".pptx": "slide", ".ppt": "slide", ".odp": "slide", ".key": "slide",
           ".xlsx": "sheet", ".xlsm": "sheet", ".xls": "sheet", ".ods": "sheet"}


class TokenCounter:
    """The embedding model's tokenizer, copied: counting never contends with query embedding
    (Hugging Face fast tokenizers are not re-entrant, and the embedder serialises its own)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = copy.deepcopy(tokenizer)
        self._lock = threading.Lock()

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of each token, special tokens excluded."""
        with self._lock:
            enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                  truncation=False, verbose=False)
        return [tuple(pair) for pair in enc["offset_mapping"]]

    def count(self, text: str) -> int:
        return len(self.offsets(text))


_counters: weakref.WeakKeyDictionary[Embedder, TokenCounter] = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def counter_for(embedder: Embedder) -> TokenCounter:
    """One counter per loaded model, made on first use and dropped with the model."""
    with _counters_lock:
        counter = _counters.get(embedder)
        if counter is None:
            counter = _counters[embedder] = TokenCounter(embedder.tokenizer)
        return counter


@dataclass(frozen=True)
class Packed:
    number: int
    citation: str
    hits: tuple[Hit, ...]  # neighbouring chunks of one document, in reading order
    text: str
    tokens: int
    truncated: bool

    @property
    def first(self) -> Passage:
        return self.hits[0].passage

    @property
    def score(self) -> float:
        return max(h.score for h in self.hits)

    @property
    def pages(self) -> Pages:
        return pages_of(self.hits)


@dataclass(frozen=True)
class Pages:
    """The page a group of hits cites (that of its best hit's best match, as a search cites it)
    and the first and last page of its text; all None for formats without pages."""

    cited: int | None
    first: int | None
    last: int | None

    @property
    def span(self) -> list[int] | None:
        """[first, last] where the text spans a page break, else None."""
        if self.first is None or self.last is None or self.first == self.last:
            return None
        return [self.first, self.last]


def pages_of(hits: Sequence[Hit]) -> Pages:
    spans = [h.passage.pages or (h.passage.page, h.passage.page) for h in hits
             if h.passage.page is not None]
    if not spans:
        return Pages(None, None, None)
    best = max(hits, key=lambda h: (h.score, -h.span.ordinal))
    cited = best.passage.page if best.passage.page is not None else spans[0][0]
    return Pages(cited, min(low for low, _ in spans), max(high for _, high in spans))


@dataclass(frozen=True)
class Retrieval:
    passages: list[Packed]
    context: str
    tokens: int
    approximate: bool | None = None  # the dense plan that ran: for the audit only


def retrieve(index: LoadedIndex, query: str, allowed: AllowedSet, max_tokens: int,
             top_k: int) -> Retrieval:
    """`allowed` is required, as for every search: nothing outside it can be packed."""
    found = search(index, query, allowed, top_k)
    spans = index.generation.chunk_spans([p.chunk_id for p, _ in found.results])
    hits = [Hit(p, spans[p.chunk_id], s) for p, s in found.results if p.chunk_id in spans]
    packed = pack(merge_neighbours(hits), max_tokens, counter_for(index.embedder))
    return replace(packed, approximate=found.approximate)


def merge_neighbours(hits: Sequence[Hit]) -> list[tuple[Hit, ...]]:
    """Runs of consecutive chunks (by ordinal) of one document become one group, best first."""
    by_doc: dict[str, list[Hit]] = {}
    for hit in hits:
        by_doc.setdefault(hit.span.doc_id, []).append(hit)
    groups: list[tuple[Hit, ...]] = []
    for doc_hits in by_doc.values():
        doc_hits.sort(key=lambda h: h.span.ordinal)
        run = [doc_hits[0]]
        for hit in doc_hits[1:]:
            if hit.span.ordinal <= run[-1].span.ordinal + 1:
                run.append(hit)
            else:
                groups.append(tuple(run))
                run = [hit]
        groups.append(tuple(run))
    groups.sort(key=lambda g: (-max(h.score for h in g), g[0].span.doc_id, g[0].span.ordinal))
    return groups


def citation(number: int, hits: Sequence[Hit]) -> str:
    """'[1] Title, p. 4': the page of the best match (slide or sheet for decks and workbooks),
    then the range where the text spans pages ('p. 4 (pp. 3-4)'), then the section when it
    adds something to the title."""
    first = hits[0].passage
    title = first.title.strip() or first.path
    parts = [f"[{number}] {title}"]
    pages = pages_of(hits)
    if pages.cited is not None:
        label = _LABELS.get(PurePosixPath(first.path).suffix.lower(), "p.")
        if pages.first == pages.last:
            parts.append(f"{label} {pages.cited}")
        else:
            plural = "pp." if label == "p." else f"{label}s"
            parts.append(f"{label} {pages.cited} ({plural} {pages.first}-{pages.last})")
    section = (first.section or "").strip()
    if section.startswith(f"{title} > "):  # heading paths often start with the title itself
        section = section[len(title) + 3:]
    if section and section != title:
        parts.append(section)
    return ", ".join(parts)


def _cut(text: str, budget: int, counter: TokenCounter) -> str:
    """The longest prefix of `text` that, with an ellipsis, fits `budget` tokens."""
    offsets = counter.offsets(text)
    keep = budget - counter.count(ELLIPSIS)
    while keep > 0:
        cut = text[:offsets[keep - 1][1]].rstrip() + ELLIPSIS
        if counter.count(cut) <= budget:
            return cut
        keep -= 1
    return ""


def pack(groups: Sequence[tuple[Hit, ...]], max_tokens: int,
         counter: TokenCounter) -> Retrieval:
    """Best groups first, each as '[n] citation' + text, while they fit; the first that does not
    fit is cut to the room left (if that is worth it) and packing stops there."""
    packed: list[Packed] = []
    blocks: list[str] = []
    used = 0
    for group in groups:
        number = len(packed) + 1
        cite = citation(number, group)
        text = group_text(group)
        head = f"{cite}\n"
        cost = counter.count(head + text) + (counter.count("\n\n") if blocks else 0)
        truncated = False
        if used + cost > max_tokens:
            room = max_tokens - used - counter.count(head) - (counter.count("\n\n") if blocks
                                                              else 0)
            text = _cut(text, room, counter) if room >= MIN_CUT_TOKENS else ""
            if not text:
                break
            truncated = True
            cost = counter.count(head + text) + (counter.count("\n\n") if blocks else 0)
        packed.append(Packed(number, cite, group, text, counter.count(text), truncated))
        blocks.append(head + text)
        used += cost
        if truncated:
            break
    context = "\n\n".join(blocks)
    tokens = counter.count(context)
    while tokens > max_tokens and packed:  # tokenizers that are not additive: drop, recount
        packed.pop()
        blocks.pop()
        context = "\n\n".join(blocks)
        tokens = counter.count(context)
    return Retrieval(packed, context, tokens)
