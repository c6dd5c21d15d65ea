"""Content-defined chunk boundaries: which natural units (indexer.chunk.units) end a chunk.

A unit ends a chunk when it outranks every other candidate ending within `window` word pieces
of it, before or after: a local maximum. Rank is a paragraph's end over a cut inside one, then a
hash of the unit's text. Whether a unit wins depends only on the text within `window` of it,
never on where the document starts, so an insertion, deletion or edit moves only the boundaries
near it (a greedy packer from the top, as the splitter alone does, moves every boundary after
it). Two winners are at least `window` apart, so `window` is also the smallest chunk they make.
A stretch between two winners longer than `max_tokens` is cut inside itself after its highest
ranked unit (into two chunks where two suffice), again and again: chosen by its own content.
A segment (a page, or what lies between headings) that a greedy fill cuts into at most three
chunks is filled greedily, as the splitter alone did (an edit there changes at most its three
chunks anyway); one that fits in two chunks but not greedily is cut once, at its best unit.
Headings are fixed points: a heading standing alone always begins a chunk, and a unit of
heading lines never ends one.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from indexer.chunk.units import Unit

Span = tuple[int, int]  # [first, last) unit indices of one chunk
# A segment that a greedy fill cuts into at most this many chunks is filled greedily, as the
# splitter alone did (the chunks retrieval was tuned on): any edit inside it re-embeds at most
# its three chunks, which is within the bound of the chunks it touches + 2 anyway.
GREEDY_CHUNKS = 3


def group(units: Sequence[Unit], window: int, max_tokens: int) -> list[Span]:
    """The chunks, in order, as unit ranges covering `units` without gaps."""
    out: list[Span] = []
    first = 0
    for i in range(1, len(units) + 1):
        if i == len(units) or (units[i].opens and not units[i - 1].title):
            out += _split(units, first, i, window, max_tokens)
            first = i
    return out


def _split(units: Sequence[Unit], lo: int, hi: int, window: int, max_tokens: int) -> list[Span]:
    """A segment: cut at the winners, then split what is still too long, inside itself."""
    ends = list(accumulate(u.tokens for u in units[lo:hi]))
    if hi - lo == 1 or ends[-1] <= max_tokens:
        return [(lo, hi)]
    if ends[-1] <= GREEDY_CHUNKS * max_tokens and \
            len(packed := _pack(units, lo, hi, max_tokens)) <= GREEDY_CHUNKS and \
            all(sum(u.tokens for u in units[a:b]) <= max_tokens for a, b in packed):
        return packed  # a short segment, filled in order as the splitter did: see GREEDY_CHUNKS
    cuts = _winners(units, lo, hi, ends, window)
    if ends[-1] <= 2 * max_tokens:  # two chunks suffice: cut where the greedy splitter would
        fits = [k for k in range(hi - lo - 1) if not units[lo + k].title
                and ends[k] <= max_tokens and ends[-1] - ends[k] <= max_tokens]
        if fits:
            return [(lo, lo + fits[-1] + 1), (lo + fits[-1] + 1, hi)]
        return _halve(units, lo, hi, max_tokens, window // 2, cuts)
    out: list[Span] = []
    start = lo
    for end in [*cuts, hi]:
        out += _halve(units, start, end, max_tokens, window // 2, [])
        start = end
    return out


def _halve(units: Sequence[Unit], lo: int, hi: int, max_tokens: int, margin: int,
           prefer: Sequence[int]) -> list[Span]:
    """A stretch longer than a chunk is cut after its unit of largest hash (among `prefer`,
    if any qualifies), leaving two chunks where two suffice, else `margin` on either side;
    each side is cut again if still too long. Content-defined, and local to the stretch."""
    ends = list(accumulate(u.tokens for u in units[lo:hi]))
    total = ends[-1]
    if hi - lo == 1 or total <= max_tokens:
        return [(lo, hi)]
    cands = [k for k in range(hi - lo - 1) if not units[lo + k].title]
    fits = [k for k in cands if ends[k] <= max_tokens and total - ends[k] <= max_tokens]
    if not fits:
        fits = [k for k in cands if ends[k] >= margin and total - ends[k] >= margin] or cands
    if not fits:  # only heading lines: nothing may end a chunk, so fill chunks in order
        return _pack(units, lo, hi, max_tokens)
    chosen = [k for k in fits if lo + k + 1 in prefer] or fits
    cut = lo + max(chosen, key=lambda k: units[lo + k].rank) + 1
    return [*_halve(units, lo, cut, max_tokens, margin, []),
            *_halve(units, cut, hi, max_tokens, margin, [])]


def _winners(units: Sequence[Unit], lo: int, hi: int, ends: Sequence[int],
             window: int) -> list[int]:
    """Where chunks end (exclusive unit indices): after each unit whose hash beats every other
    candidate ending within `window` word pieces, and that leaves `window` on either side."""
    total = ends[-1]
    cands = [k for k in range(hi - lo - 1)
             if not units[lo + k].title and ends[k] >= window and total - ends[k] >= window]
    won = []
    for n, k in enumerate(cands):
        key = units[lo + k].rank
        left, right = n - 1, n + 1
        beaten = False
        while not beaten and left >= 0 and ends[k] - ends[cands[left]] < window:
            beaten = units[lo + cands[left]].rank >= key
            left -= 1
        while not beaten and right < len(cands) and ends[cands[right]] - ends[k] < window:
            beaten = units[lo + cands[right]].rank >= key
            right += 1
        if not beaten:
            won.append(lo + k + 1)
    return won


def _pack(units: Sequence[Unit], lo: int, hi: int, max_tokens: int) -> list[Span]:
    """Fill chunks in order; a heading stays with what follows it even past `max_tokens` (the
    chunker still cuts anything past the model's own limit)."""
    out: list[Span] = []
    start, size = lo, 0
    for i in range(lo, hi):
        if size and size + units[i].tokens > max_tokens and not units[i - 1].title:
            out.append((start, i))
            start, size = i, 0
        size += units[i].tokens
    out.append((start, hi))
    return out
