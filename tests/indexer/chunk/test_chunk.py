from indexer.chunk.chunker import Chunker, chunk_id_for
from indexer.embed.embedder import Embedder
from indexer.load.loader import Document, Page


def doc(text: str, page: int | None = None) -> Document:
    return Document("d", "d.txt", "t", (Page(page, text),), "sha")


LONG = " ".join(f"Sentence number {i} talks about electrolyte batch {i * 7} and its yield."
                for i in range(300))


def test_no_chunk_exceeds_the_model_limit_and_offsets_point_into_the_page(
        embedder: Embedder) -> None:
    chunker = Chunker(embedder.tokenizer, chunk_tokens=120, overlap=20,
                      max_tokens=embedder.max_tokens)
    chunks = chunker.chunk(doc(LONG, page=4))
    assert len(chunks) > 10
    for c in chunks:
        assert len(embedder.tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 120
        assert LONG[c.char_start:c.char_end] == c.text
        assert c.page == 4
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    # Overlap: consecutive chunks share text.
    assert chunks[1].char_start < chunks[0].char_end


def test_unbreakable_text_is_cut_at_the_model_limit(embedder: Embedder) -> None:
    chunker = Chunker(embedder.tokenizer, chunk_tokens=500, overlap=0,
                      max_tokens=embedder.max_tokens)
    blob = "x" * 5000 + " " + "y" * 5000  # no separators the splitter can use well
    for c in chunker.chunk(doc(blob)):
        assert len(embedder.tokenizer(c.text, add_special_tokens=False)["input_ids"]) \
            <= embedder.max_tokens


def test_chunk_ids_are_stable_and_content_derived(embedder: Embedder) -> None:
    chunker = Chunker(embedder.tokenizer, 120, 20, embedder.max_tokens)
    first = [c.chunk_id for c in chunker.chunk(doc(LONG))]
    again = [c.chunk_id for c in chunker.chunk(doc(LONG))]
    assert first == again and len(set(first)) == len(first)
    assert all(0 < i < 2**53 for i in first)
    assert chunk_id_for("d", None, "a") != chunk_id_for("e", None, "a")
    assert chunk_id_for("d", None, "a") != chunk_id_for("d", None, "a", salt=1)
    assert chunk_id_for("d", None, "a") != chunk_id_for("d", None, "a", occurrence=1)


def test_inserting_text_above_keeps_the_ids_of_unchanged_chunks(embedder: Embedder) -> None:
    chunker = Chunker(embedder.tokenizer, 120, 20, embedder.max_tokens)
    paragraphs = [f"Paragraph {i}. " + " ".join(f"word{i}x{j}" for j in range(40))
                  for i in range(12)]
    before = {c.text: c.chunk_id for c in chunker.chunk(doc("\n\n".join(paragraphs)))}
    inserted = ["A new paragraph at the top about something else entirely."] + paragraphs
    after = {c.text: c.chunk_id for c in chunker.chunk(doc("\n\n".join(inserted)))}
    same_text = set(before) & set(after)
    assert len(same_text) >= len(before) - 2
    assert all(before[t] == after[t] for t in same_text)


def test_repeated_text_gets_distinct_ids(embedder: Embedder) -> None:
    chunker = Chunker(embedder.tokenizer, 16, 0, embedder.max_tokens)
    para = "The same twelve words stand here again and again in this one page."
    chunks = chunker.chunk(doc("\n\n".join([para] * 3)))
    assert [c.text for c in chunks] == [para] * 3 and len({c.chunk_id for c in chunks}) == 3


def test_a_heading_never_ends_a_chunk(embedder: Embedder) -> None:
    """The heading moves to the passage it titles, also when it is not Markdown."""
    body = " ".join(f"Cell {i} kept {90 + i % 9} percent of its capacity." for i in range(40))
    text = f"2. Design\n\n{body}\n\n3. Results after 300 cycles\n\n{body.replace('Cell', 'Pack')}"
    chunker = Chunker(embedder.tokenizer, chunk_tokens=60, overlap=0,
                      max_tokens=embedder.max_tokens)
    chunks = chunker.chunk(doc(text))
    assert len(chunks) > 4
    for c in chunks:
        assert not c.text.rstrip().endswith("3. Results after 300 cycles"), c.text
        assert text[c.char_start:c.char_end] == c.text
    holder = next(c for c in chunks if "3. Results after 300 cycles" in c.text)
    assert holder.text.startswith("3. Results after 300 cycles\n\nPack 0 kept")


def test_pages_and_sections_are_never_mixed_in_one_chunk(embedder: Embedder) -> None:
    pages = (Page(1, "Slide one text about electrolytes.", "Agenda"),
             Page(2, "Slide two text about sensors.", "Risks", ocr=True))
    chunks = Chunker(embedder.tokenizer, 200, 0, embedder.max_tokens).chunk(
        Document("d", "d.pptx", "t", pages, "sha"))
    assert [(c.page, c.section, c.ocr, c.text) for c in chunks] == [
        (1, "Agenda", False, "Slide one text about electrolytes."),
        (2, "Risks", True, "Slide two text about sensors.")]


def test_a_chunk_across_pdf_pages_keeps_where_each_page_begins(embedder: Embedder) -> None:
    pages = (Page(3, "Page three ends here."), Page(4, "Page four follows.", continued=True),
             Page(5, "Page five too.", continued=True))
    [chunk] = Chunker(embedder.tokenizer, 200, 0, embedder.max_tokens).chunk(
        Document("d", "d.pdf", "t", pages, "sha"))
    assert (chunk.page, chunk.page_end) == (3, 5)
    assert [(chunk.text[at:at + 9], page) for at, page in chunk.breaks] == [
        ("Page four", 4), ("Page five", 5)]
    assert chunk.chunk_id == chunk_id_for("d", 3, chunk.text)  # the breaks are not in the id


def test_demo_report_has_no_passage_ending_with_a_heading(embedder: Embedder) -> None:
    from pathlib import Path

    from indexer.load.loader import LoadOptions, load_file

    rel = "joint/acme-globex/cell-sensor-integration.md"
    path = Path(__file__).resolve().parents[3] / "corpora" / "demo" / rel
    report = next(iter(load_file(path, rel, LoadOptions())))
    assert isinstance(report, Document)
    chunks = Chunker(embedder.tokenizer, 200, 32, embedder.max_tokens).chunk(report)
    for c in chunks:
        assert not c.text.rstrip().splitlines()[-1].startswith("#"), c.text
    results = [c for c in chunks if c.section and "3. Results after 300 cycles" in c.section]
    assert results and results[0].text.startswith("## 3. Results after 300 cycles")
    assert any("0.6 %" in c.text or "JX-01" in c.text for c in results)


def test_a_page_of_up_to_three_chunks_is_filled_from_the_top(embedder: Embedder) -> None:
    """A short page (an abstract, a record) gets the splitter's own chunks: each chunk but the
    last is as full as the next sentence allows, so the title stays with most of its text."""
    chunker = Chunker(embedder.tokenizer, chunk_tokens=60, overlap=0,
                      max_tokens=embedder.max_tokens)

    def tokens(text: str) -> int:
        return len(embedder.tokenizer(text, add_special_tokens=False)["input_ids"])

    for sentences in (5, 8, 9):  # 16 word pieces each, 3 to a chunk: two or three chunks
        text = " ".join(f"Batch {i} of the electrolyte reached {i * 3} mS/cm in the cell."
                        for i in range(sentences))
        chunks = chunker.chunk(doc(text))
        assert 2 <= len(chunks) <= 3, sentences
        for this, following in zip(chunks, chunks[1:], strict=False):
            first_sentence = following.text.split(". ")[0] + "."
            assert tokens(this.text + " " + first_sentence) > 60, sentences  # filled
