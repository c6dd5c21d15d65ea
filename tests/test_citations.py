"""Every result cites the page its words are on, and legacy and accented text is read and found:
through the real build and the real app (in process), on one small corpus built once.

- multi-page PDFs whose page-specific sentences are each cited with their own page, and a
  passage across a page break with its range (search, retrieve and the audit alike);
- a scanned two-page PDF, OCR'd, cited the same way (slow: one small scan);
- a Windows-1252 note whose encoding detection cannot tell: read in the corpus's fallback, with
  a warning; a Windows-1250 one under a rule that names its encoding;
- queries without accents (and with them) in every mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from tests.deployment import app_client, create_key
from tests.factory import write, write_pdf

# Two short PDFs: each page a sentence shared by every page and one found on it only.
PDFS = {
    "reports/kiln.pdf": [
        "Kiln retrofit notes. In Oulu the burner nozzle of kiln four clogged after 312 firings.",
        "Kiln retrofit notes. The refractory lining of kiln two cracked at 1140 degrees in June.",
        "Kiln retrofit notes. Operator Saara Lehto replaced the flue damper with a ceramic one.",
    ],
    "reports/mill.pdf": [
        "Mill survey notes. The gearbox of the ball mill in Kiruna leaked 9 litres of oil a week.",
        "Mill survey notes. Liner plates from the Lulea foundry wore out after 41 days of milling.",
    ],
}
NOTE = "Genève: dépôt reçu, été 7."  # Windows-1252; chardet: cp1250 or ISO-8859-16?
CZECH = "Plzeň: revize baterie proběhla."  # Windows-1250; chardet: cp1250 or ISO-8859-16?
ACCENTED = ("L'équipe de révision a visité le dépôt de Genève. Die Straße zum Lager, une œuvre "
            "d'art, l'æther du labo et le ﬁnancement du projet ont été discutés.")
PLAIN = "The revision team visited the Zurich depot and its cafe on the quay at noon."
MANIFEST = """\
partners: [acme]
rules:
  - match: "central/**"
    allow: [acme]
    encoding: windows-1250
  - match: "**"
    allow: [acme]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
          embedder: Embedder) -> tuple[Path, BuildReport]:
    corpus = tmp_path_factory.mktemp("citations") / "corpus"
    write(corpus / "access.yaml", MANIFEST)
    for path, pages in PDFS.items():
        write_pdf(corpus / path, pages, title=path)
    write(corpus / "notes/geneve.txt", NOTE.encode("cp1252"))
    write(corpus / "central/plzen.txt", CZECH.encode("cp1250"))
    write(corpus / "shared/proces-verbal.md", ACCENTED)
    write(corpus / "shared/minutes.txt", PLAIN)
    index = corpus.parent / "index"
    return index, build(corpus, index, settings, embedder)


@pytest.fixture(scope="module")
def client(built: tuple[Path, BuildReport]) -> Iterator[TestClient]:
    with app_client(built[0]) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(built: tuple[Path, BuildReport]) -> dict[str, str]:
    return {"acme": create_key(built[0], "acme", "citations"),
            "admin": create_key(built[0], None, "citations admin")}


def search(client: TestClient, key: str, query: str, mode: str = "hybrid",
           top_k: int = 5) -> list[dict[str, Any]]:
    got = client.post("/v1/search", json={"query": query, "mode": mode, "top_k": top_k},
                      headers={"Authorization": f"Bearer {key}"})
    assert got.status_code == 200, got.text
    return list(got.json()["results"])


def test_each_page_specific_sentence_is_cited_with_its_own_page(
        client: TestClient, keys: dict[str, str]) -> None:
    spanning = []
    for path, pages in PDFS.items():
        for number, page in enumerate(pages, start=1):
            sentence = page.split(". ", 1)[1]
            top = search(client, keys["acme"], sentence)[0]
            assert (top["doc_id"], top["page"]) == (path, number), (sentence, top)
            if "pages" in top:
                first, last = top["pages"]
                assert first <= number <= last and first < last
                spanning.append(top["chunk_id"])
    assert spanning  # some passage runs on across a break, and says so with its range


def test_a_passage_across_a_break_has_its_range_everywhere(
        client: TestClient, keys: dict[str, str]) -> None:
    """Search, retrieve (and so MCP, which answers with retrieve's passages) and the audit
    carry the same page, and the range of a passage that spans a break."""
    query = PDFS["reports/mill.pdf"][1].split(". ", 1)[1]
    top = search(client, keys["acme"], query, top_k=1)[0]
    assert top["page"] == 2 and top["pages"] == [1, 2]
    assert top["text"].startswith("Mill survey notes. The gearbox")
    got = client.post("/v1/retrieve", json={"query": query, "top_k": 1},
                      headers={"Authorization": f"Bearer {keys['acme']}"}).json()
    [passage] = got["passages"]
    assert (passage["page"], passage["pages"], passage["page_end"]) == (2, [1, 2], 2)
    assert passage["citation"] == "[1] reports/mill.pdf, p. 2 (pp. 1-2)"
    audit = client.get("/v1/admin/audit", params={"partner": "acme", "limit": 2},
                       headers={"Authorization": f"Bearer {keys['admin']}"}).json()["events"]
    assert [(e["surface"], e["documents"][0]["pages"]) for e in audit] == [
        ("retrieve", [2]), ("search", [2])]


def test_a_note_detection_cannot_tell_is_read_in_the_corpus_fallback_with_a_warning(
        built: tuple[Path, BuildReport], client: TestClient, keys: dict[str, str]) -> None:
    index, report = built
    warnings = {w.path: w.message for w in report.warnings}
    assert "notes/geneve.txt" not in {s.path for s in report.skipped}
    assert warnings["notes/geneve.txt"].startswith(
        "not UTF-8, and detection cannot tell its encoding (")
    assert warnings["notes/geneve.txt"].endswith(
        "read it differently): read as cp1252, the default for Western text; if that is wrong, "
        "name its encoding on its access.yaml rule ('encoding:')")
    top = search(client, keys["acme"], "Geneve: depot recu, ete 7")[0]
    assert top["doc_id"] == "notes/geneve.txt" and top["text"] == NOTE


def test_an_encoding_on_the_rule_decides_for_its_files(
        built: tuple[Path, BuildReport], client: TestClient, keys: dict[str, str]) -> None:
    _, report = built
    warning = next(w.message for w in report.warnings if w.path == "central/plzen.txt")
    assert warning.endswith("read it differently): read as cp1250, access.yaml rule 1 (line 3)")
    top = search(client, keys["acme"], "Plzen revize baterie probehla", mode="lexical")[0]
    assert top["doc_id"] == "central/plzen.txt" and top["text"] == CZECH  # not "Plzeò"


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_a_query_without_accents_finds_the_accented_words(
        client: TestClient, keys: dict[str, str], mode: str) -> None:
    top = search(client, keys["acme"], "Geneve depot equipe revision", mode=mode)[0]
    assert "Genève" in top["text"] and "dépôt" in top["text"]
    if mode != "dense":  # every word of it, lexically (dense may prefer the shorter note)
        assert top["doc_id"] == "shared/proces-verbal.md"


def test_folding_covers_sharp_s_ligatures_and_the_reverse(
        client: TestClient, keys: dict[str, str]) -> None:
    for query in ("strasse", "oeuvre", "aether", "financement"):
        found = [r["doc_id"] for r in search(client, keys["acme"], query, mode="lexical")]
        assert found == ["shared/proces-verbal.md"], query
    found = [r["doc_id"] for r in search(client, keys["acme"], "Zürich dépôt café",
                                         mode="lexical")]
    assert found[0] == "shared/minutes.txt"


SCAN = [["The ferry board of Vaasa signed the berth lease in March.",
         "Rent rises by four percent each year."],
        ["Dredging of the outer channel starts after the ice melts.",
         "The harbour master keeps the signed copy."]]


def write_scan(path: Path, pages: list[list[str]]) -> Path:
    """A scanned PDF: each page's lines rendered to an image, no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=26)
    images = []
    for lines in pages:
        image = Image.new("L", (1000, 420), 250)
        draw = ImageDraw.Draw(image)
        for at, line in enumerate(lines):
            draw.text((60, 80 + 70 * at), line, fill=20, font=font)
        images.append(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


@pytest.mark.slow
@pytest.mark.needs_program("tesseract", "apt-get install tesseract-ocr (make install does it)")
def test_the_sentences_of_a_scan_are_cited_with_their_page(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "access.yaml", "partners: [acme]\nrules:\n  - match: '**'\n    allow: '*'\n")
    write_scan(corpus / "scans/lease.pdf", SCAN)
    report = build(corpus, index, settings, embedder)
    assert report.skipped == [] and report.documents == 1
    key = create_key(index, "acme", "ocr")
    with app_client(index) as client:
        for number, lines in enumerate(SCAN, start=1):
            for line in lines:
                top = search(client, key, line)[0]
                assert (top["page"], top["ocr"]) == (number, True), (line, top)
