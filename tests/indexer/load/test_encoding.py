"""Legacy text encodings: told by chardet when one reading clearly wins, else a skip that says
why; binary stays binary."""

from pathlib import Path

import pytest

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.load.formats.encoding import Fallback, UndecodableText, decode
from indexer.load.loader import Document, LoadOptions, LoadWarning, Skipped, load_file
from indexer.settings import IndexerSettings
from tests.deployment import app_client, create_key
from tests.factory import write

SAMPLES = [
    ("cp1252", "Café crème au bureau de Genève: le partenaire a envoyé le procès-verbal de la "
               "réunion, et la société prévoit une deuxième étape à Lyon."),
    ("cp1252", "La qualità del caffè è ottima, però il rapporto finale non è ancora pronto. La "
               "città di Genova ospiterà la prossima riunione."),
    ("cp1252", "Our supplier’s “final” report costs 20 € per unit – see the annex."),
    ("cp1250", "Příliš žluťoučký kůň úpěl ďábelské ódy. Zkouška baterie proběhla úspěšně."),
    ("cp1251", "Это тестовый документ о батареях: ёмкость остаётся высокой."),
    ("cp932", "これは電池に関する文書です。試験結果は良好でした。"),
]


@pytest.mark.parametrize(("encoding", "text"), SAMPLES)
def test_a_legacy_encoding_is_told_and_named(encoding: str, text: str) -> None:
    decoded = decode(text.encode(encoding))
    assert decoded.text == text
    assert decoded.encoding is not None
    assert text.encode(decoded.encoding) == text.encode(encoding)  # the same code page


def test_utf8_and_utf16_need_no_detection() -> None:
    assert decode("Café".encode()).encoding is None
    assert decode("\ufeffCafé".encode()).text == "Café"
    assert decode("Café".encode("utf-16")).text == "Café"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\x00\x01\x02abc", "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(1, 255)) * 3, "binary"),
    (b"\xe9\xe8\xe0", "its encoding cannot be told"),
])
def test_binary_and_undecidable_bytes_are_refused_with_the_reason(raw: bytes,
                                                                  reason: str) -> None:
    with pytest.raises(UndecodableText, match=reason):
        decode(raw)


def test_the_loader_reports_the_encoding_it_assumed(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.md", "# Genève\n\nCafé crème à Genève, réunion à "
                                        "l'hôtel.".encode("cp1252"))
    out = list(load_file(path, "notes.md", LoadOptions()))
    warnings = [o for o in out if isinstance(o, LoadWarning)]
    docs = [o for o in out if isinstance(o, Document)]
    assert [w.message for w in warnings] == ["not UTF-8: read as cp1252 (detected by chardet)"]
    assert docs and docs[0].title == "Genève" and "Café crème" in docs[0].pages[0].text
    assert not [o for o in out if isinstance(o, Skipped)]


def test_a_cp1252_file_is_indexed_and_found_by_a_query_quoting_it(
        tmp_path: Path, embedder: Embedder) -> None:
    """Through the real build and search: the Windows-1252 note a partner's old tool wrote."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "access.yaml", "partners: [acme]\nrules:\n  - match: '**'\n    allow: [acme]\n")
    write(corpus / "notes/geneva.txt", (
        "Café crème at the Genève site: the partners reviewed the thermal runaway tests of the "
        "pouch cells. Résumé: the vent opened at 142 °C, as specified.").encode("cp1252"))
    write(corpus / "notes/other.txt", "The coating line in Lyon runs at two metres per minute.")
    report = build(corpus, index, IndexerSettings(progress=False), embedder)
    assert report.skipped == [] and report.documents == 2
    assert [(w.path, w.message) for w in report.warnings] == [
        ("notes/geneva.txt", "not UTF-8: read as cp1252 (detected by chardet)")]
    key = create_key(index, "acme", "acme")
    with app_client(index) as client:
        got = client.post("/v1/search", json={"query": "Café crème at the Genève site"},
                          headers={"Authorization": f"Bearer {key}"})
    assert got.status_code == 200
    top = got.json()["results"][0]
    assert top["doc_id"] == "notes/geneva.txt" and "Café crème at the Genève site" in top["text"]


# Short notes chardet reads as Windows-1252 (or 1250) and as another code page alike.
UNTOLD = [("cp1252", "Genève: dépôt reçu, été 7."), ("cp1250", "Plzeň: revize baterie proběhla.")]


@pytest.mark.parametrize(("encoding", "text"), UNTOLD)
def test_what_detection_cannot_tell_is_read_in_the_fallback_with_its_candidates(
        encoding: str, text: str) -> None:
    raw = text.encode(encoding)
    with pytest.raises(UndecodableText, match="its encoding cannot be told"):
        decode(raw)
    decoded = decode(raw, Fallback(encoding, "access.yaml rule 1 (line 3)"))
    assert decoded.text == text and decoded.encoding == encoding
    assert len(decoded.candidates) >= 2 and len(set(decoded.candidates)) == len(decoded.candidates)


def test_a_fallback_never_makes_binary_or_unreadable_bytes_text() -> None:
    fallback = Fallback("cp1252", "the default for Western text")
    with pytest.raises(UndecodableText, match="binary"):
        decode(b"\x00\x01\x02abc", fallback)
    for confident in SAMPLES:  # detection that can tell is not overruled
        assert decode(confident[1].encode(confident[0]), fallback).candidates == ()
    with pytest.raises(UndecodableText, match=r"and ascii, access.yaml rule 1 \(line 3\), "
                                              r"cannot read byte 0xf2 at offset 4"):
        decode(UNTOLD[1][1].encode("cp1250"), Fallback("ascii", "access.yaml rule 1 (line 3)"))


def test_the_loader_warns_which_files_the_fallback_read(tmp_path: Path) -> None:
    path = write(tmp_path / "note.txt", UNTOLD[0][1].encode("cp1252"))
    out = list(load_file(path, "note.txt", LoadOptions()))
    [warning] = [o for o in out if isinstance(o, LoadWarning)]
    assert warning.message.startswith("not UTF-8, and detection cannot tell its encoding (")
    assert "read as cp1252, the default for Western text" in warning.message
    assert [o.pages[0].text for o in out if isinstance(o, Document)] == [UNTOLD[0][1]]
