"""The shared PDF set (text, scanned, encrypted, broken) through the build's own stages:
every file is indexed or gets a one-line reason; passwords come from the environment variables
access.yaml names, never from the manifest."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from indexer.build import build
from indexer.discover import discover_files
from indexer.embed.embedder import Embedder
from indexer.incremental import Previous
from indexer.intake import FileOptions, LocalParsing, read_corpus
from indexer.load.isolate import IsolatedParser
from indexer.load.loader import load_options
from indexer.manifest import Manifest, PasswordRule
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests.environment import EVAL
from tests.factory import write

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
needs_pdfs = pytest.mark.needs_eval("pdfs", "MANIFEST.tsv")


def passwords() -> dict[str, str]:
    """file name -> user password, as ../shared/eval/pdfs/MANIFEST.tsv documents them."""
    out = {}
    for line in (EVAL / "pdfs" / "MANIFEST.tsv").read_text().splitlines()[1:]:
        cols = line.split("\t")
        if cols[1] == "encrypted" and (m := re.search(r'password ""([^"]+)""', cols[-1])):
            out[Path(cols[0]).name] = m.group(1)
    return out


@needs_pdfs
def test_encrypted_pdfs_open_with_the_password_variable_access_yaml_names(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(EVAL / "pdfs" / "encrypted", corpus / "agreements")
    write(corpus / "access.yaml", """\
partners: [a]
rules:
  - match: "**"
    allow: [a]
passwords:
  "agreements/crazyones-*.pdf": PKS_TEST_PW_CRAZYONES
  "agreements/libreoffice-*.pdf": PKS_TEST_PW_LIBREOFFICE
  "agreements/password-example.pdf": PKS_TEST_PW_NEVER_SET
""")
    known = passwords()
    environ = {"PKS_TEST_PW_CRAZYONES": known["crazyones-encrypted-256.pdf"],
               "PKS_TEST_PW_LIBREOFFICE": "not-" + known["libreoffice-writer-password.pdf"]}
    report = build(corpus, tmp_path / "index", settings, embedder, environ=environ)
    assert report.documents == 1
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["agreements/libreoffice-writer-password.pdf"].startswith(
        "encrypted: no (valid) password configured")
    assert reasons["agreements/password-example.pdf"] == (
        "encrypted: environment variable PKS_TEST_PW_NEVER_SET named in access.yaml is not set")
    gen = Generation.open_live(tmp_path / "index")
    text = " ".join(p.text for p in gen.passages(gen.all_chunk_ids().tolist()).values())
    assert "crazy" in text.lower()
    assert known["crazyones-encrypted-256.pdf"] not in (tmp_path / "index").joinpath(
        "generations", gen.name, "meta.sqlite").read_bytes().decode("latin-1")


@needs_pdfs
def test_every_shared_pdf_is_indexed_or_has_a_one_line_reason(
        settings: IndexerSettings) -> None:
    corpus = EVAL / "pdfs"
    manifest = Manifest(corpus / "access.yaml", ("a",), (), tuple(
        PasswordRule(1, f"encrypted/{name}", f"PW_{i}") for i, name in enumerate(passwords())))
    environ = {f"PW_{i}": pw for i, pw in enumerate(passwords().values())}
    files, refused = discover_files(corpus)
    no_ocr = settings.model_copy(update={"ocr": False})  # OCR is the formats tests' (and slow)
    with IsolatedParser(settings.parse_timeout_seconds) as parser:
        intake = read_corpus(corpus, files, Previous(None, False, False), LocalParsing(parser),
                             FileOptions(manifest, environ),
                             load_options(no_ocr))
    indexed = {o.record.path for o in intake.outcomes if o.parsed}
    reasons = {s.path: s.reason for s in intake.skipped + refused}
    for path in files:
        rel = path.relative_to(corpus).as_posix()
        assert (rel in indexed) != (rel in reasons), rel
        if rel in reasons:
            assert reasons[rel].strip() and "\n" not in reasons[rel], (rel, reasons[rel])
    assert {"encrypted/crazyones-encrypted-256.pdf", "encrypted/password-example.pdf",
            "encrypted/libreoffice-writer-password.pdf", "text/pdflatex-4-pages.pdf"} <= indexed
    assert {"broken/empty.pdf", "broken/invalid.pdf"} <= set(reasons)
