"""BM25 with the statistics of an allowed set: equal to FTS5's bm25() when everything is allowed,
equal to an index of only the allowed documents otherwise, and additive across shards."""

from __future__ import annotations

import pickle
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexer.store.bm25 import LexicalStats
from indexer.store.layout import LEXICAL, META_DB
from indexer.store.reader import Generation
from indexer.store.records import Grant
from tests.indexer.store.conftest import PARTNERS, write_generation

WEIGHTS = (1.0, 0.5, 0.0)
WORDS = ("cell anode cathode electrolyte sulfide annealing conductivity sensor grating strain "
         "drift calibration pouch swelling charging recycling cobalt lithium leaching board "
         "budget acquisition committee quarter partner wiki review").split()
QUERIES = [["electrolyte"], ["cells", "conductivity", "annealed"], ["cobalt", "cobalt"],
           ["strain", "sensor", "drift", "calibration"], ["Intro"], ["nothing-like-it", "wiki"],
           ["board", "acquisition", "budget", "quarter"]]


def corpus(seed: int = 7, documents: int = 40) -> dict[str, tuple]:
    """Documents of Zipf-distributed words, so that terms have every kind of frequency; half
    of them acme's, a quarter globex's, the rest nobody's."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    docs: dict[str, tuple] = {}
    for n in range(documents):
        owner = ("acme", "acme", "globex", None)[n % 4]
        grant = Grant(n % 4, frozenset({owner} if owner else ()), None)
        texts = [" ".join(rng.choices(WORDS, weights, k=rng.randint(3, 40)))
                 for _ in range(rng.randint(1, 3))]
        title = " ".join(rng.choices(WORDS, k=2))
        docs[f"{owner or 'internal'}/doc-{n:02d}.txt"] = (f"{owner or 'internal'}/doc-{n:02d}.txt",
                                                          title, grant, texts)
    return docs


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Generation:
    root = tmp_path_factory.mktemp("bm25")
    write_generation(root, corpus())
    return Generation.open_live(root)


def fts5_bm25(generation: Generation, terms: list[str]) -> list[tuple[int, float]]:
    """FTS5's own ranking over the whole table: the reference when everything is allowed."""
    db = sqlite3.connect(generation.path / META_DB)
    expression = " OR ".join(f'"{t}"' for t in terms)
    rows = db.execute("SELECT rowid, -bm25(chunks_fts, ?, ?, ?) AS s FROM chunks_fts WHERE "
                      "chunks_fts MATCH ? ORDER BY s DESC, rowid", (*WEIGHTS, expression))
    return [(int(c), float(s)) for c, s in rows]


def search(generation: Generation, terms: list[str], allowed: np.ndarray,
           k: int = 1000) -> list[tuple[int, float]]:
    return generation.lexical_search(terms, allowed, k, WEIGHTS,
                                     generation.lexical_stats(terms, allowed))


def same(found: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [c for c, _ in found] == [c for c, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("terms", QUERIES)
def test_with_everything_allowed_the_scores_are_fts5s_own(written: Generation,
                                                           terms: list[str]) -> None:
    everything = written.all_chunk_ids()
    same(search(written, terms, everything), fts5_bm25(written, terms))
    top = search(written, terms, everything, k=3)
    assert top == search(written, terms, everything)[:3]


def test_statistics_are_those_of_the_allowed_chunks_alone(tmp_path: Path) -> None:
    """The oracle: acme's search in the whole index equals a search in an index of only the
    documents acme may see (chunk ids differ between the two: compared by text)."""
    docs = corpus()
    write_generation(tmp_path / "all", docs)
    write_generation(tmp_path / "acme", {d: v for d, v in docs.items() if d.startswith("acme/")})
    whole, alone = Generation.open_live(tmp_path / "all"), Generation.open_live(tmp_path / "acme")
    acme = np.sort(next(g.chunk_ids for g in whole.grant_rows() if g.partner == "acme"))
    shaped = 0  # queries whose scores the whole index's statistics would have changed
    for terms in QUERIES:
        mine = search(whole, terms, acme)
        shaped += mine != whole.lexical_search(terms, acme, 1000, WEIGHTS,
                                               whole.lexical_stats(terms, whole.all_chunk_ids()))
        reference = search(alone, terms, alone.all_chunk_ids())
        text_of = {c: p.text for c, p in whole.passages([c for c, _ in mine]).items()}
        text_in = {c: p.text for c, p in alone.passages([c for c, _ in reference]).items()}
        assert [(text_of[c], round(s, 12)) for c, s in mine] == \
            [(text_in[c], round(s, 12)) for c, s in reference]
        assert whole.lexical_stats(terms, acme) == \
            alone.lexical_stats(terms, alone.all_chunk_ids())
    assert shaped >= len(QUERIES) - 2  # the test can tell the two statistics apart


def test_a_partner_reads_a_few_runs_of_postings_whatever_else_holds_a_term(
        written: Generation) -> None:
    """Rows are by access rule: a partner's chunks are a run or two, and only those runs of a
    term's postings are read (bm25.Postings._postings), so hidden postings cost no work."""
    found = written.lexical_index()
    assert found is not None
    postings = found[0]
    for grant in written.grant_rows():
        runs = postings._selection(np.sort(grant.chunk_ids))
        assert len(runs.starts) <= 2 and runs.chunks == grant.chunk_ids.size


def test_hidden_chunks_count_nowhere(written: Generation) -> None:
    everything = written.all_chunk_ids()
    visible = np.sort(next(g.chunk_ids for g in written.grant_rows() if g.partner == "globex"))
    stats = written.lexical_stats(["board"], visible)
    assert stats.chunks == visible.size < everything.size
    texts = written.passages(visible.tolist())
    assert stats.frequencies == {"board": sum("board" in p.text.split() or "board" in
                                               p.title.split() for p in texts.values())}
    assert {c for c, _ in search(written, ["board"], visible)} <= set(visible.tolist())


def test_stats_add_up_across_shards_and_travel_by_pickle(written: Generation) -> None:
    """dfs_query_then_fetch: each shard counts its part, all score with the sum, and the merged
    top-k equals one search over the union."""
    everything = written.all_chunk_ids()
    left, right = everything[::2].copy(), everything[1::2].copy()
    terms = ["cell", "conductivity", "sensor"]
    total = written.lexical_stats(terms, left) + written.lexical_stats(terms, right)
    assert total == written.lexical_stats(terms, everything)
    assert pickle.loads(pickle.dumps(total)) == total
    assert LexicalStats() + total == total
    merged = sorted(written.lexical_search(terms, left, 5, WEIGHTS, total)
                    + written.lexical_search(terms, right, 5, WEIGHTS, total),
                    key=lambda hit: (-hit[1], hit[0]))[:5]
    same(merged, search(written, terms, everything, k=5))


def test_a_generation_without_postings_computes_them_from_fts5(tmp_path: Path) -> None:
    write_generation(tmp_path, corpus())
    written = Generation.open_live(tmp_path)
    expected = {tuple(t): search(written, t, written.all_chunk_ids()) for t in QUERIES}
    (written.path / LEXICAL).unlink()  # as in a generation written before lexical.npz
    older = Generation(written.path)
    for terms in QUERIES:
        assert search(older, terms, older.all_chunk_ids()) == expected[tuple(terms)]


def test_terms_are_text_never_syntax_and_unknown_terms_match_nothing(
        written: Generation) -> None:
    everything = written.all_chunk_ids()
    assert search(written, ['" OR *', "NEAR(", "\ud800"], everything) == []
    assert search(written, [], everything) == []
    assert search(written, ["cell"], np.zeros(0, dtype=np.int64)) == []
    assert written.lexical_stats(["zzz"], everything).frequencies == {"zzz": 0}
    assert PARTNERS == ("acme", "globex")


def test_an_unchanged_rebuild_reuses_the_postings_and_a_change_exports_them(
        tmp_path: Path) -> None:
    docs = corpus()
    first = Generation(tmp_path / "generations" / write_generation(tmp_path, docs))
    again = Generation(tmp_path / "generations" / write_generation(tmp_path, docs))
    assert (again.path / LEXICAL).stat().st_ino == (first.path / LEXICAL).stat().st_ino
    path, title, grant, texts = docs["acme/doc-00.txt"]
    changed = Generation(tmp_path / "generations" / write_generation(
        tmp_path, {**docs, "acme/doc-00.txt": (path, "A new title", grant, texts)}))
    assert (changed.path / LEXICAL).stat().st_ino != (again.path / LEXICAL).stat().st_ino
    assert changed.info["lexical_digest"] != again.info["lexical_digest"]
    for terms in (["new", "title"], ["cell"]):
        fresh = search(changed, terms, changed.all_chunk_ids())
        same(fresh, fts5_bm25(changed, terms))
    assert search(changed, ["new"], changed.all_chunk_ids())  # the change is searchable
