import os
from pathlib import Path

import pytest

from indexer.discover import discover
from indexer.load.loader import Document, LoadOptions, LoadWarning, Skipped, load_corpus, load_file
from tests.environment import EVAL
from tests.factory import pdf_bytes, write, write_jsonl, write_pdf

SHARED_PDFS = EVAL / "pdfs"


def load_all(root: Path, max_mb: float = 100.0) -> tuple[list[Document], list[Skipped]]:
    out = list(load_corpus(root, discover(root), LoadOptions(max_mb, ocr=False)))
    return ([x for x in out if isinstance(x, Document)], [x for x in out if isinstance(x, Skipped)])


def reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {s.path: s.reason for s in skipped}


def test_text_markdown_and_pdf_pages(tmp_path: Path) -> None:
    write(tmp_path / "access.yaml", "partners: []\nrules: []\n")
    write(tmp_path / "a/notes.txt", "plain notes")
    write(tmp_path / "b/spec.md", "intro line\n\n# The Spec Title\n\nbody")
    write_pdf(tmp_path / "c/report.pdf", ["first page text", "", "third page text"],
              title="Quarterly Report")
    write(tmp_path / ".hidden/secret.txt", "not data")
    docs, skipped = load_all(tmp_path)
    by_path = {d.path: d for d in docs}
    assert set(by_path) == {"a/notes.txt", "b/spec.md", "c/report.pdf"}  # manifest, hidden: no
    assert skipped == []
    assert by_path["b/spec.md"].title == "The Spec Title"
    pdf = by_path["c/report.pdf"]
    assert pdf.title == "Quarterly Report"
    assert [(p.number, p.text.strip()) for p in pdf.pages] == [(1, "first page text"),
                                                               (3, "third page text")]


def test_an_index_inside_its_corpus_is_not_indexed(tmp_path: Path) -> None:
    write(tmp_path / "doc.txt", "text")
    write(tmp_path / "var/index/CURRENT", "g1")
    assert [p.name for p in discover(tmp_path, exclude=tmp_path / "var/index")] == ["doc.txt"]


def test_jsonl_records_become_documents_and_bad_lines_are_skipped(tmp_path: Path) -> None:
    good = [{"_id": "d1", "title": "One", "text": "first"}, {"_id": 2, "text": "second"}]
    write_jsonl(tmp_path / "export.jsonl", good)
    with open(tmp_path / "export.jsonl", "a") as handle:
        handle.write('{"_id": "d3", "text": \n')  # broken JSON
        handle.write('{"title": "no id", "text": "x"}\n')
        handle.write('{"_id": "d1", "text": "again"}\n')
        handle.write('\n["not", "an object"]\n')
    docs, skipped = load_all(tmp_path)
    assert [(d.doc_id, d.title, d.path) for d in docs] == [("d1", "One", "export.jsonl"),
                                                          ("2", "2", "export.jsonl")]
    assert docs[0].pages[0].text == "One first"
    got = reasons(skipped)
    assert got["export.jsonl:3"].startswith("invalid JSON")
    assert got["export.jsonl:4"] == "missing or empty '_id'"
    assert got["export.jsonl:5"] == "duplicate _id 'd1' in this file"
    assert got["export.jsonl:7"] == "record is not a JSON object"


def test_bad_files_are_skipped_with_reasons_and_the_rest_loads(tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "fine")
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "blank.md", "  \n\n ")
    write(tmp_path / "cp1252.txt", "Café crème au bureau de Genève.".encode("cp1252"))
    # Three letters, any of a dozen code pages: read in the corpus's (Windows-1252), with a
    # warning (tests/indexer/load/test_encoding.py), not skipped.
    write(tmp_path / "unknown.txt", b"\xe9\xe8\xe0")
    write(tmp_path / "binary.txt", b"\x00\x01\x02abc")
    write(tmp_path / "truncated.pdf", pdf_bytes(["some text"])[:60])
    write(tmp_path / "garbage.pdf", b"%PDF-1.4\nthis is not a pdf at all\n%%EOF")
    write_pdf(tmp_path / "locked.pdf", ["secret text"], password="s3cret")
    write_pdf(tmp_path / "scan.pdf", ["", ""])
    write(tmp_path / "slides.key", b"PK\x03\x04")
    write(tmp_path / "big.txt", "x" * 3000)
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    docs, skipped = load_all(tmp_path, max_mb=0.002)
    assert [d.path for d in docs] == ["cp1252.txt", "ok.txt", "unknown.txt"]
    assert docs[0].pages[0].text == "Café crème au bureau de Genève."
    assert docs[2].pages[0].text == "éèà"
    got = reasons(skipped)
    assert got["empty.txt"] == "empty file (0 bytes)"
    assert got["blank.md"] == "no text (only whitespace)"
    assert "binary" in got["binary.txt"]
    assert got["truncated.pdf"].startswith("corrupt or unreadable PDF")
    assert got["garbage.pdf"].startswith("corrupt or unreadable PDF")
    assert got["locked.pdf"].startswith("encrypted: no (valid) password configured")
    assert got["scan.pdf"].startswith("no extractable text in 2 page(s)")
    assert "OCR is turned off" in got["scan.pdf"]
    assert got["slides.key"].startswith("unsupported file type '.key'")
    assert "over the 0.002 MB limit" in got["big.txt"]
    assert got["pipe.txt"].startswith("not a regular file")
    assert got["dangling.md"].startswith("not a regular file")


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    write_pdf(tmp_path / "owner-only.pdf", ["readable despite encryption"], password="")
    docs, skipped = load_all(tmp_path)
    assert skipped == [] and "readable despite encryption" in docs[0].pages[0].text


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    write(tmp_path / "u16.txt", "Grüße aus Köln".encode("utf-16"))
    docs, _ = load_all(tmp_path)
    assert docs[0].pages[0].text == "Grüße aus Köln"


@pytest.mark.slow
@pytest.mark.needs_eval("pdfs")
def test_real_world_pdfs_broken_encrypted_scanned(tmp_path: Path) -> None:
    # OCR off: the scanned files are OCR'd once, in test_formats_ocr.py (CPU is shared).
    results = list(load_corpus(SHARED_PDFS, discover(SHARED_PDFS), LoadOptions(ocr=False)))
    docs = {r.path for r in results if isinstance(r, Document)}
    got = reasons([r for r in results if isinstance(r, Skipped)])
    for broken in ("broken/invalid.pdf", "broken/bad-content.pdf",
                   "broken/append-page-content-damaged.pdf", "broken/empty.pdf"):
        assert broken in got
    assert got["encrypted/password-example.pdf"].startswith("encrypted: no (valid) password")
    assert got["scanned/linn.pdf"].startswith("no extractable text")
    assert {"text/multicolumn.pdf", "text/pdflatex-4-pages.pdf"} <= docs
    assert not any(isinstance(r, LoadWarning) and "multicolumn" in r.path for r in results)


def test_pdf_with_a_password_opens_when_given_it(tmp_path: Path) -> None:
    write_pdf(tmp_path / "locked.pdf", ["secret agreement text"], password="s3cret")
    rel = "locked.pdf"
    opened = list(load_file(tmp_path / rel, rel, LoadOptions(password="s3cret")))
    assert isinstance(opened[0], Document) and "secret agreement" in opened[0].pages[0].text
    wrong = list(load_file(tmp_path / rel, rel, LoadOptions(password="nope")))
    assert isinstance(wrong[0], Skipped) and wrong[0].reason.startswith("encrypted: no (valid)")


def test_markdown_is_split_into_heading_sections(tmp_path: Path) -> None:
    write(tmp_path / "report.md", "Preface line.\n\n# Report\n\n## 1. Aim\n\nFind the limit.\n\n"
                                  "## 2. Results\n\n### 2.1 Cycling\n\nLost 3 %.\n\n```\n# not a "
                                  "heading\n```\n\n## 3. Empty\n")
    docs, _ = load_all(tmp_path)
    pages = docs[0].pages
    assert docs[0].title == "Report"
    assert [(p.section, p.text.strip().splitlines()[-1]) for p in pages] == [
        (None, "Preface line."),
        ("Report > 1. Aim", "Find the limit."),
        ("Report > 2. Results > 2.1 Cycling", "```"),
        ("Report > 3. Empty", "## 3. Empty"),
    ]
    assert pages[1].text.startswith("# Report\n\n## 1. Aim")  # a bare heading joins the next
    assert "# not a heading" in pages[2].text
