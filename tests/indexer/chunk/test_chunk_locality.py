"""An edit of one paragraph changes the chunks that hold it and at most two more, wherever it is:
chunk boundaries follow the content, not the distance from the top (indexer/chunk/boundaries.py)."""

import json
import random
from pathlib import Path

import pytest

from benchmarks.edits import OPS, changed_chunks, edited, embedded_after, load, write_document
from indexer.chunk.chunker import Chunker
from indexer.embed.embedder import Embedder
from indexer.store.reader import Generation
from tests.deployment import run
from tests.factory import write

WORDS = ("cell electrolyte anode cathode sensor pilot line batch capacity cycle test report "
         "partner module thermal voltage current sample coating separator calibration drift "
         "housing supplier shipment review protocol margin failure analysis lithium sulfide "
         "nickel cobalt graphite silicon binder slurry density porosity impedance temperature "
         "humidity storage charge discharge rate fade plating dendrite safety vent "
         "pressure").split()


def handbook(paragraphs: int = 60, seed: int = 7) -> list[str]:
    """Paragraphs of two to seven sentences, the sizes of a real handbook's (30-200 tokens)."""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 22))).capitalize()
                     for _ in range(rng.randint(2, 7))]
        out.append(". ".join(sentences) + ".")
    return out


@pytest.mark.parametrize("fmt", ["md", "docx"])
@pytest.mark.parametrize("op", OPS)
def test_one_edit_changes_at_most_two_more_chunks_than_it_touches(
        embedder: Embedder, tmp_path: Path, fmt: str, op: str) -> None:
    chunker = Chunker(embedder.tokenizer, 200, 32, embedder.max_tokens)
    paragraphs = handbook()
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = load(write_document(tmp_path / "before" / f"handbook.{fmt}", "Cell handbook",
                                 paragraphs))
    after = load(write_document(tmp_path / "after" / f"handbook.{fmt}", "Cell handbook",
                                edited(paragraphs, op)))
    chunks_before, chunks_after = chunker.chunk(before), chunker.chunk(after)
    assert len(chunks_before) > 25
    changed = changed_chunks(before, after, chunks_before, chunks_after)
    assert embedded_after(chunks_before, chunks_after) <= changed + 2
    ids = {c.text: c.chunk_id for c in chunks_before}  # ids follow the text, not the position
    assert all(ids[c.text] == c.chunk_id for c in chunks_after if c.text in ids)


@pytest.mark.parametrize("fmt", ["md", "docx"])
def test_a_paragraph_inserted_after_the_title_is_embedded_with_at_most_two_neighbours(
        tmp_path: Path, fmt: str) -> None:
    """The nightly case through the CLI: 60 paragraphs under one heading, a paragraph added
    under the title, built twice; the report counts what was embedded."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "access.yaml", "partners: [p]\nrules:\n  - match: '**'\n    allow: [p]\n")
    paragraphs = handbook()
    doc = write_document(corpus / f"handbook.{fmt}", "Cell handbook", paragraphs)
    args = ("indexer", "build", "--corpus", str(corpus), "--index", str(index), "--no-progress",
            "--report", str(tmp_path / "report.json"))
    assert run(*args).returncode == 0
    first = json.loads((tmp_path / "report.json").read_text())
    ids_before = {c.text: c.chunk_id for c in _chunks(index, doc.name)}
    write_document(doc, "Cell handbook", edited(paragraphs, "insert-top"))
    assert run(*args).returncode == 0
    second = json.loads((tmp_path / "report.json").read_text())
    assert first["chunks"] > 25 and second["changed"] == 1
    assert second["embedded"] <= 3, second
    after = _chunks(index, doc.name)
    kept = [c for c in after if c.text in ids_before]
    assert len(kept) >= len(after) - 3
    assert all(ids_before[c.text] == c.chunk_id for c in kept)  # audit and links still point


def _chunks(index: Path, doc_id: str) -> list:
    return Generation.open_live(index).chunks_of([doc_id])[doc_id]
