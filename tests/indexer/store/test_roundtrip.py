"""A generation written through the store's writer reads back exactly: rows, grants, files,
vectors, the lexical index; nothing of a failed write is ever live."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from indexer.store.layout import CURRENT, GENERATIONS, StoreError, live_generation_dir
from indexer.store.reader import Generation, live_partners
from indexer.store.records import Chunk, Grant, StoredDocument
from indexer.store.writer import GenerationWriter
from tests.indexer.store.conftest import DIM, DOCS, PARTNERS, vectors_for, write_generation

WEIGHTS = (1.0, 0.5, 0.0)


@pytest.fixture()
def generation(tmp_path: Path) -> Generation:
    write_generation(tmp_path)
    return Generation.open_live(tmp_path)


def test_rows_read_back_as_written(generation: Generation, tmp_path: Path) -> None:
    assert generation.partners == PARTNERS == live_partners(tmp_path)
    assert generation.info["model"] == "test-vectors" and generation.counts() == (4, 5)
    assert generation.all_chunk_ids().tolist() == [100, 101, 200, 300, 400]
    passages = generation.passages([101, 300])
    assert passages[101].text == DOCS["shared/charter.md"][3][1]
    assert (passages[300].doc_id, passages[300].path, passages[300].title) == \
        ("gloss-soc", "shared/glossary.jsonl", "State of charge")
    span = generation.chunk_spans([101])[101]
    assert (span.doc_id, span.ordinal, span.char_start) == ("shared/charter.md", 1, 0)
    assert generation.document_chunk_ids("shared/charter.md") == [100, 101]
    assert generation.document_chunk_ids("nothing") == [] and generation.document("x") is None
    row = generation.document("acme/electrolyte.txt")
    assert row is not None and row.chunk_ids.tolist() == [200]
    assert generation.document_owners(["acme/electrolyte.txt", "internal/board.md"]) == \
        {"acme/electrolyte.txt": "acme", "internal/board.md": None}
    assert generation.owner_counts() == {"acme": 1, "globex": 2}  # no owner: not counted
    assert generation.stored_documents(["gloss-soc"])["gloss-soc"] == StoredDocument(
        "gloss-soc", "shared/glossary.jsonl", "State of charge",
        generation.document_shas()["gloss-soc"])
    carried = generation.chunks_of(["shared/charter.md"])["shared/charter.md"]
    assert [c.text for c in carried] == DOCS["shared/charter.md"][3]
    assert isinstance(carried[0], Chunk) and carried[0].section == "Intro"
    text = DOCS["acme/electrolyte.txt"][3][0]
    assert generation.chunk_ids_by_text([text, "never stored"]) == {text: 200}
    assert generation.file_records()["shared/glossary.jsonl"].doc_ids == ("gloss-soc",)


def test_grants_read_back_per_partner_and_expiry(generation: Generation) -> None:
    rows = {(g.partner, g.until): g.chunk_ids.tolist() for g in generation.grant_rows()}
    assert rows == {("acme", None): [100, 101, 300], ("globex", None): [100, 101, 300],
                    ("acme", date(2030, 6, 30)): [200]}
    assert generation.grants_of(["acme/electrolyte.txt", "internal/board.md"]) == {
        "acme/electrolyte.txt": [("acme", date(2030, 6, 30))]}


def test_vectors_and_the_lexical_index_answer_within_the_allowed_ids(
        generation: Generation) -> None:
    stored = generation.vectors.vectors(np.array([300], dtype=np.int64))
    assert np.allclose(stored, vectors_for(DOCS["gloss-soc"][3]))
    allowed = np.array([100, 101, 300], dtype=np.int64)
    hits = generation.vectors.search(stored[0], allowed, 10)
    assert [h.chunk_id for h in hits][0] == 300 and {h.chunk_id for h in hits} == {100, 101, 300}
    assert lexical_search(generation, ["kestrel"], allowed) == []  # hidden: not found
    found = lexical_search(generation, ["kestrel", "rotterdam"], np.array([100, 200]))
    assert {c for c, _ in found} == {100, 200} and all(score > 0 for _, score in found)
    assert lexical_search(generation, ['" OR *'], allowed) == []  # text, never syntax


def lexical_search(generation: Generation, terms: list[str],
                   allowed: np.ndarray) -> list[tuple[int, float]]:
    return generation.lexical_search(terms, allowed, 10, WEIGHTS,
                                     generation.lexical_stats(terms, allowed))


def test_a_new_generation_goes_live_in_one_switch_and_old_ones_are_pruned(
        tmp_path: Path) -> None:
    names = [write_generation(tmp_path, keep=2) for _ in range(3)]
    assert (tmp_path / CURRENT).read_text().strip() == names[-1]
    assert sorted(p.name for p in (tmp_path / GENERATIONS).iterdir()) == names[1:]
    assert live_generation_dir(tmp_path) == tmp_path / GENERATIONS / names[-1]


def test_a_duplicate_chunk_id_is_refused_and_an_aborted_write_leaves_nothing(
        tmp_path: Path) -> None:
    live = write_generation(tmp_path)
    writer = GenerationWriter(tmp_path, DIM, {"model": "test-vectors"}, PARTNERS)
    writer.add_document(StoredDocument("a", "a.txt", "A", "0"), Grant(None, frozenset(), None))
    chunk = Chunk(7, "a", 0, None, 0, 1, "x")
    writer.add_chunks([chunk], vectors_for(["x"]))
    with pytest.raises(StoreError, match="duplicate chunk id 7"):
        writer.add_chunks([chunk], vectors_for(["x"]))
    writer.abort()
    assert [p.name for p in (tmp_path / GENERATIONS).iterdir()] == [live]
    assert Generation.open_live(tmp_path).name == live


def test_no_published_index_is_a_store_error_naming_the_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"no published index in {tmp_path}"):
        Generation.open_live(tmp_path)
    with pytest.raises(StoreError, match="python -m indexer build"):
        live_partners(tmp_path)
