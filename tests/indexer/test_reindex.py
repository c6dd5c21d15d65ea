"""Incremental re-index, measured in files parsed and chunks embedded, with real files."""

from __future__ import annotations

import os
from pathlib import Path

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests.conftest import MANIFEST, make_access_corpus
from tests.factory import write, write_pdf

PARAGRAPHS = [
    f"Section {i}. The coating line trial number {i} measured a wet film thickness of {40 + i} "
    f"micrometres, and the dryer ran at {80 + i} degrees with {i % 7 + 2} air knives. The "
    f"operators logged {i * 3} adhesion failures in the peel test of batch {i}, mostly near "
    "the edges of the foil where the slot die lip was worn." for i in range(30)]


def docs_of(index: Path) -> dict[str, str]:
    gen = Generation.open_live(index)
    return dict(gen._db().execute("SELECT doc_id, path FROM documents").fetchall())


def test_unchanged_corpus_is_carried_over_without_parsing_or_embedding(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    first = build(corpus, index, settings, embedder)
    assert first.files_parsed == 9 and first.added == first.documents == 10
    old = Generation.open_live(index)
    again = build(corpus, index, settings, embedder)
    assert (again.files_parsed, again.files_carried, again.embedded) == (0, 9, 0)
    assert again.reused == again.chunks == first.chunks
    assert (again.unchanged, again.added, again.changed, again.deleted) == (10, 0, 0, 0)
    carried = Generation.open_live(index)
    assert carried.name == again.generation != old.name  # a new generation, the same chunks
    assert carried.all_chunk_ids().tolist() == old.all_chunk_ids().tolist()
    # Touched (new mtime, same bytes): recognised by its sha256, still not parsed.
    path = corpus / "beta/sensors.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    touched = build(corpus, index, settings, embedder)
    assert (touched.files_parsed, touched.embedded) == (0, 0)
    new = Generation.open_live(index)
    assert new.file_records()["beta/sensors.md"].mtime_ns == path.stat().st_mtime_ns
    assert new.all_chunk_ids().tolist() == old.all_chunk_ids().tolist()


def test_access_change_alone_embeds_nothing_and_applies_at_the_next_build(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index, settings, embedder)
    write(corpus / "access.yaml", MANIFEST.replace("allow: [beta]", "allow: [beta, delta]"))
    report = build(corpus, index, settings, embedder)
    assert report.embedded == 0 and report.files_parsed == 0
    grants = {(g.partner, int(c)) for g in Generation.open_live(index).grant_rows()
              for c in g.chunk_ids}
    gen = Generation.open_live(index)
    beta_chunks = {c.chunk_id for c in gen.chunks_of(["beta/sensors.md"])["beta/sensors.md"]}
    assert beta_chunks and all(("delta", c) in grants for c in beta_chunks)


def test_paragraph_inserted_at_the_top_re_embeds_only_the_changed_chunks(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [a]\nrules:\n  - match: '**'\n    allow: [a]\n")
    doc = write(corpus / "report.md", "# Coating trials\n\n" + "\n\n".join(PARAGRAPHS))
    index = tmp_path / "index"
    first = build(corpus, index, settings, embedder)
    assert first.chunks >= 20
    before = {c.chunk_id for c in Generation.open_live(index).chunks_of(["report.md"])["report.md"]}
    inserted = "A new summary paragraph: the worn slot die lip was replaced in March."
    write(doc, f"# Coating trials\n\n{inserted}\n\n" + "\n\n".join(PARAGRAPHS))
    second = build(corpus, index, settings, embedder)
    chunks = Generation.open_live(index).chunks_of(["report.md"])["report.md"]
    covering = sum(1 for c in chunks if c.char_start < len("# Coating trials\n\n") + len(inserted))
    assert 1 <= second.embedded <= covering + 2
    assert second.reused == second.chunks - second.embedded
    # Chunk ids of unchanged passages survive: links and audit entries keep meaning.
    assert len(before & {c.chunk_id for c in chunks}) >= first.chunks - 3


def test_renamed_file_embeds_nothing_and_a_deleted_one_is_gone(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index, settings, embedder)
    (corpus / "alpha/archive").mkdir()
    os.rename(corpus / "alpha/electrolyte.txt", corpus / "alpha/archive/electrolyte-2026.txt")
    (corpus / "drafts/plan.txt").unlink()
    report = build(corpus, index, settings, embedder)
    assert report.embedded == 0 and report.files_parsed == 1
    assert (report.added, report.deleted, report.changed) == (1, 2, 0)
    docs = docs_of(index)
    assert "alpha/archive/electrolyte-2026.txt" in docs
    assert "alpha/electrolyte.txt" not in docs and "drafts/plan.txt" not in docs
    gen = Generation.open_live(index)
    texts = {p.text for p in gen.passages(gen.all_chunk_ids().tolist()).values()}
    assert not any("CORMORANT" in t for t in texts)  # nothing of the deleted file is served


def test_a_file_broken_tonight_keeps_its_last_good_version_until_it_is_gone(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index, settings, embedder)
    write(corpus / "alpha/pilot-line.pdf", b"%PDF-1.7\n1 0 obj garbage truncated by a copy")
    write(corpus / "alpha/fresh-but-broken.pdf", b"%PDF-1.7\n1 0 obj garbage")
    report = build(corpus, index, settings, embedder)
    assert [k.path for k in report.kept_previous] == ["alpha/pilot-line.pdf"]
    assert "corrupt or unreadable PDF" in report.kept_previous[0].reason
    assert [s.path for s in report.skipped] == ["alpha/fresh-but-broken.pdf"]
    assert not report.complete and report.embedded == 0
    assert "alpha/pilot-line.pdf" in docs_of(index)
    record = Generation.open_live(index).file_records()["alpha/pilot-line.pdf"]
    assert record.status == "kept"
    # Still broken the next night: still kept, still reported (kept files are always retried).
    again = build(corpus, index, settings, embedder)
    assert [k.path for k in again.kept_previous] == ["alpha/pilot-line.pdf"]
    # Repaired: indexed from the new bytes.
    write_pdf(corpus / "alpha/pilot-line.pdf", ["The repaired pilot line report."])
    fixed = build(corpus, index, settings, embedder)
    assert not fixed.kept_previous and fixed.changed == 1
    # Really gone from the corpus: gone from the index.
    (corpus / "alpha/pilot-line.pdf").unlink()
    gone = build(corpus, index, settings, embedder)
    assert gone.deleted == 1 and "alpha/pilot-line.pdf" not in docs_of(index)


def test_changed_chunking_settings_re_parse_but_reuse_identical_texts(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index, settings, embedder)
    wider = settings.model_copy(update={"chunk_tokens": 128})
    report = build(corpus, index, wider, embedder)
    assert report.files_parsed == 9 and report.files_carried == 0
    assert report.embedded + report.reused == report.chunks
