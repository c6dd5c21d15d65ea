"""Lexical retrieval: BM25 within the allowed set, with the statistics of the allowed set (what
the caller may not see never shapes its scores or their order). A person's query becomes plain
terms here; the store folds and stems them as it folded and stemmed the chunks (so "Geneve"
finds "Genève"), counts and scores."""

from __future__ import annotations

import re
import unicodedata

from search_api.access.allowed import AllowedSet
from search_api.retrieval.rounds import retrieve
from search_api.retrieval.shards import Lexical, Shards

# Weights of the indexed columns (chunk text, document title, heading path) in bm25(). The
# title counts half a chunk's text: every chunk of a document then matches its title's words.
# SciFact train nDCG@10: lexical 0.680 / 0.687 / 0.688 at title weight 0 / 0.5 / 1, hybrid
# best at 0.5 (docs/QUALITY.md). Heading paths are already in the chunk's own text.
WEIGHTS = (1.0, 0.5, 0.0)
# Runs of letters and digits: the words of a query, for the stop-word test below. The store runs
# each through the index's own tokenizer (FTS5's porter unicode61), which stems it and may split
# it further; quotes, *, -, :, ^ and parentheses are separators and never query syntax.
TERM = re.compile(r"[^\W_]+")
# Lucene's English stop words (EnglishAnalyzer, Elasticsearch's `_english_`), left out of the
# query when it has other words: BM25 gives them almost no weight, yet each one matches nearly
# every chunk, and scoring every match is what a query costs (SciFact: 11,967 of 12,115 chunks
# matched by the median query with them; docs/PERFORMANCE.md).
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())


def query_terms(query: str) -> list[str]:
    """Plain text -> the terms to search, any of which may match. Words such as AND, OR and
    NEAR, and characters such as `"`, `*`, `-`, `:` or `(`, are text, never query syntax. Stop
    words are left out unless the query has nothing else."""
    terms = TERM.findall(unicodedata.normalize("NFC", query).lower())  # é, not e + ◌́
    return [term for term in terms if term not in STOP_WORDS] or terms


def lexical(shards: Shards, query: str, allowed: AllowedSet, k: int,
            weights: tuple[float, float, float] = WEIGHTS) -> list[tuple[int, float]]:
    """The k best chunks of `allowed` by BM25, best first: (chunk id, BM25 score), with N, the
    average length and each term's document frequency of `allowed` alone: counted by every
    shard over its part, summed, then every shard scores with the totals (retrieval/shards.py)
    and the best k of their answers are kept."""
    if len(allowed) == 0 or k <= 0:
        return []
    return retrieve(shards, allowed, lexical=asked(query, k, weights))[1]


def asked(query: str, k: int, weights: tuple[float, float, float] = WEIGHTS) -> Lexical:
    """The lexical question of a person's query."""
    return Lexical(tuple(query_terms(query)), k, weights)
