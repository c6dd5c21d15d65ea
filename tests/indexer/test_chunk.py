from indexer.chunk import Chunker, chunk_id_for
from indexer.embed import Embedder
from indexer.load import Document, Page


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
