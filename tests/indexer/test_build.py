"""The build command as a user runs it (its main(), in process): exit codes, messages, and the
live index left intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.build import BuildError, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.generations import list_generations, rollback
from indexer.store.layout import CURRENT, GENERATIONS, live_generation_dir
from indexer.store.reader import Generation
from tests.conftest import make_access_corpus
from tests.deployment import Ran, run
from tests.factory import write


def run_build(corpus: Path, index: Path, *extra: str) -> Ran:
    return run("indexer", "build", "--corpus", str(corpus), "--index", str(index), *extra)


def test_cli_exit_codes_and_messages(tmp_path: Path) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"

    clean = run_build(corpus, index)
    assert clean.returncode == 0, clean.stderr
    assert "documents indexed: 10" in clean.stdout and "skipped: 0" in clean.stdout
    first = (index / CURRENT).read_text()

    write(corpus / "alpha/broken.pdf", b"%PDF-1.7\n1 0 obj garbage")
    skipped = run_build(corpus, index)
    assert skipped.returncode == 3, skipped.stderr
    assert "alpha/broken.pdf: corrupt or unreadable PDF" in skipped.stdout
    assert "alpha/broken.pdf" in skipped.stderr  # the log names it too
    second = (index / CURRENT).read_text()
    assert second != first  # published despite the skip

    manifest = (corpus / "access.yaml").read_text()
    write(corpus / "access.yaml", manifest.replace("allow: [beta]", "allow: [beta, hooli]"))
    bad = run_build(corpus, index)
    assert bad.returncode == 2
    assert "access.yaml:8: rule 3: unknown partner 'hooli'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert (index / CURRENT).read_text() == second  # nothing changed

    write(corpus / "access.yaml", manifest.replace("2099-12-31", "2099-13-01"))
    assert run_build(corpus, index).returncode == 2

    assert run_build(tmp_path / "missing", index).returncode == 2
    args = run_build(corpus, index, "--chunk-tokens", "40", "--chunk-overlap", "60")
    assert args.returncode == 2 and "chunk_overlap" in args.stderr
    assert (index / CURRENT).read_text() == second


def test_cli_fails_with_1_when_nothing_can_be_indexed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [a]\nrules: []\n")
    write(corpus / "only.pdf", b"not a pdf")
    result = run_build(corpus, tmp_path / "index")
    assert result.returncode == 1
    assert "no document" in result.stderr and "unchanged" in result.stderr
    assert live_generation_dir(tmp_path / "index") is None


def test_rebuild_reuses_vectors_and_keeps_old_generations_for_rollback(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    first = build(corpus, index, settings, embedder)
    assert first.reused == 0 and first.embedded == first.chunks
    write(corpus / "beta/new.txt", "A brand new finding about sodium-ion anodes.")
    second = build(corpus, index, settings, embedder)
    assert second.embedded == 1 and second.reused == first.chunks
    gen = Generation.open_live(index)
    assert gen.name == second.generation and len(gen.vectors) == first.chunks + 1
    # The reused vectors are the vectors a fresh embedding gives (bf16 rounds a little
    # differently in another batch: a cosine above 0.9999, each component within 5e-3).
    ids = gen.all_chunk_ids()
    passages = gen.passages(ids.tolist())
    fresh = embedder.embed([passages[i].text for i in ids.tolist()])
    assert abs(gen.vectors.vectors(ids) - fresh).max() < 5e-3
    assert (gen.vectors.vectors(ids) * fresh).sum(axis=1).min() > 0.9999
    report = json.loads((gen.path / "report.json").read_text())
    assert report["documents"] == 11
    for _ in range(3):
        build(corpus, index, settings, embedder)
    names = sorted(p.name for p in (index / GENERATIONS).iterdir())
    assert len(names) == settings.keep_generations


def test_crashed_build_leaves_the_live_generation_untouched(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_access_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index, settings, embedder)
    live = (index / CURRENT).read_text()
    write(corpus / "shared/extra.txt", "more text to embed")

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("indexer.store.writer.VectorFile.write", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        build(corpus, index, settings, embedder)
    assert (index / CURRENT).read_text() == live
    assert not [p for p in (index / GENERATIONS).iterdir() if p.name.endswith(".tmp")]
    assert Generation.open_live(index).partners == ("alpha", "beta", "delta", "gamma")


def test_empty_corpus_is_refused(tmp_path: Path, settings: IndexerSettings,
                                 embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [a]\nrules: []\n")
    with pytest.raises(BuildError, match="no document"):
        build(corpus, tmp_path / "index", settings, embedder)


def test_a_rule_that_matches_nothing_is_reported(tmp_path: Path, settings: IndexerSettings,
                                                 embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [a]\nrules:\n  - match: 'docs/**'\n    allow: [a]\n"
                                  "  - match: 'Docs/**'\n    allow: [a]\n")
    write(corpus / "docs/one.txt", "a document about anodes")
    report = build(corpus, tmp_path / "index", settings, embedder)
    assert [w.message for w in report.warnings] == [
        "rule 2 (line 5, match 'Docs/**') matched no indexed document"]


def test_a_build_after_a_rollback_starts_from_what_is_live(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "access.yaml", "partners: [a]\nrules:\n  - match: '**'\n    allow: [a]\n")
    reports = []
    for n in range(3):
        write(corpus / f"note-{n}.txt", f"Field note {n}: the anode slurry viscosity was {n}0 Pa.")
        reports.append(build(corpus, index, settings, embedder))
    rollback(index, to=reports[0].generation)
    after = build(corpus, index, settings, embedder)
    assert after.added == 2 and after.files_carried == 1 and after.files_parsed == 2
    assert len(list_generations(index)) == settings.keep_generations
