"""Which page a result cites: the page on which its best match for this query lies.

A chunk may run on across a page break (a PDF's text flows from page to page, so a break that
an edit moves moves no chunk: indexer/chunk/chunker.py), and it keeps where each later page
begins in its text. A result on one page cites that page. A result that spans a break cites
the page of its sentence with the most query terms:

- its text is cut into sentences, and a sentence that crosses a break into its part on each
  page;
- every part is analysed as the lexical index analyses text (Generation.analyzer: folded, then
  stemmed), so "Geneve" matches "Genève" and "batteries" matches "battery";
- the sentence holding the most distinct query terms wins; a tie goes to the one with more
  occurrences of them, then to the earlier one;
- it cites the page of that sentence's part holding most of those occurrences (the earlier
  part on a tie);
- a result in which no query term occurs (found by meaning alone) cites its first page.

It also carries its range, `pages` (first, last). All the spanning results of one answer are
analysed in one call on the passages already read: no further read of the index, and nothing
at all for results on one page.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import replace

from indexer.store.lexical import Analyzer
from indexer.store.records import Passage
from search_api.retrieval.lexical import query_terms

# Where a sentence ends: after . ! ? or … (and a closing quote or bracket), before white space;
# or at an empty line.
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n[ \t]*\n\s*")

Part = tuple[int, int, str]  # (sentence number, page, text)


def cite(analyze: Analyzer, query: str, passages: Mapping[int, Passage]) -> dict[int, Passage]:
    """The passages, each that spans a page break citing the page of its best match for
    `query` (the others as they are)."""
    spanning = [p for p in passages.values() if p.breaks and p.pages is not None]
    if not spanning:
        return dict(passages)
    wanted = analyze(query_terms(query))
    if not wanted:
        return dict(passages)
    parts = {p.chunk_id: _parts(p) for p in spanning}
    counts = iter(analyze.occurrences([text for each in parts.values() for _, _, text in each],
                                      wanted))
    cited = dict(passages)
    for passage in spanning:
        found = [(sentence, page, next(counts)) for sentence, page, _ in parts[passage.chunk_id]]
        page = _best_page(found)
        if page is not None:
            cited[passage.chunk_id] = replace(passage, page=page)
    return cited


def _parts(passage: Passage) -> list[Part]:
    """The passage's sentences, each cut at the page breaks inside it, with their pages."""
    assert passage.pages is not None
    text = passage.text
    bounds = [0, *(m.end() for m in SENTENCE_END.finditer(text)), len(text)]
    starts = [0, *(at for at, _ in passage.breaks)]
    numbers = [passage.pages[0], *(page for _, page in passage.breaks)]
    parts: list[Part] = []
    for sentence, (first, last) in enumerate(zip(bounds, bounds[1:], strict=False)):
        cuts = [first, *(at for at in starts if first < at < last), last]
        for start, end in zip(cuts, cuts[1:], strict=False):
            if end > start:
                parts.append((sentence, numbers[bisect_right(starts, start) - 1],
                              text[start:end]))
    return parts


def _best_page(found: list[tuple[int, int, dict[str, int]]]) -> int | None:
    """The page of the sentence with the most distinct query tokens (then the most of them,
    then the earliest), from each part's counts of them (parts in reading order); None when
    none occurs at all."""
    best, cited = (0, 0), None
    at = 0
    while at < len(found):
        sentence, hits = found[at][0], 0
        terms: set[str] = set()
        on_page: dict[int, int] = {}
        while at < len(found) and found[at][0] == sentence:
            _, page, counts = found[at]
            if counts:
                terms.update(counts)
                hits += sum(counts.values())
                on_page[page] = on_page.get(page, 0) + sum(counts.values())
            at += 1
        if (len(terms), hits) > best:  # strictly: the earlier sentence keeps a tie
            best = (len(terms), hits)
            cited = max(on_page, key=lambda page: (on_page[page], -page))
    return cited
