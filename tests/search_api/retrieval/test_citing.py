"""Which page a passage that spans page breaks cites: its sentence with the most query terms,
compared as the lexical index compares words (the real FTS5 analyser, folded)."""

from __future__ import annotations

from indexer.store.lexical import TOKENIZE, Analyzer
from indexer.store.records import Passage
from search_api.retrieval.citing import cite

PAGE_3 = "Results of the trial. The compressor in Genève ran 412 hours before its service. "
PAGE_4 = "The dépôt team replaced the seals. Batteries were charged twice a day. "
PAGE_5 = "Closing remarks of the trial."
TEXT = PAGE_3 + PAGE_4 + PAGE_5
SPANNING = Passage(7, "d", "Trial", "trial.pdf", 3, TEXT, pages=(3, 5),
                   breaks=((len(PAGE_3), 4), (len(PAGE_3) + len(PAGE_4), 5)))
ONE_PAGE = Passage(8, "e", "Deck", "deck.pptx", 2, "The compressor slide.")
ANALYZE = Analyzer(TOKENIZE, folded=True)


def cited(query: str) -> int | None:
    return cite(ANALYZE, query, {7: SPANNING, 8: ONE_PAGE})[7].page


def test_the_sentence_with_the_most_query_terms_gives_the_page() -> None:
    assert cited("compressor ran 412 hours") == 3
    assert cited("who replaced the seals?") == 4
    assert cited("closing remarks") == 5
    assert cited("battery charging") == 4  # stemmed as the index stems


def test_words_are_compared_folded_both_ways() -> None:
    assert cited("Geneve compressor") == 3
    assert cited("depot team") == 4


def test_no_query_term_in_it_cites_its_first_page_and_the_range_stays() -> None:
    result = cite(ANALYZE, "thermal runaway", {7: SPANNING})[7]
    assert (result.page, result.pages) == (3, (3, 5))


def test_ties_go_to_the_earlier_sentence_and_one_page_passages_are_left_alone() -> None:
    assert cited("trial") == 3  # "trial" is on pages 3 and 5
    assert cite(ANALYZE, "seals", {8: ONE_PAGE}) == {8: ONE_PAGE}


def test_a_sentence_across_a_break_cites_the_side_holding_its_matches() -> None:
    first, second = "The pump on the roof was ", "replaced by a quieter pump model in May."
    passage = Passage(9, "f", "F", "f.pdf", 1, first + second, pages=(1, 2),
                      breaks=((len(first), 2),))
    assert cite(ANALYZE, "quieter pump model May", {9: passage})[9].page == 2
    assert cite(ANALYZE, "roof pump", {9: passage})[9].page == 1
