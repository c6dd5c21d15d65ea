"""Office files and e-mail attachments through a real build and the API: citations and rights."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from search_api.identity.keys import KeyStore
from tests.deployment import app_client
from tests.factory import write
from tests.factory_office import write_deck, write_report

MANIFEST = """\
partners: [alpha, beta]
rules:
  - match: "mail/**"
    allow: [alpha]
  - match: "shared/**"
    allow: "*"
"""


def test_attachments_take_the_mails_rights_and_slides_their_numbers(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", MANIFEST)
    write_deck(corpus / "shared/steering.pptx")
    message = EmailMessage()
    message["From"], message["To"] = "hannah.kerr@initech.example", "elena.marsh@acme.example"
    message["Subject"], message["Date"] = "HIL results", "Fri, 30 Oct 2026 16:00:00 +0100"
    message.set_content("Elena, the validation report of the board is attached. Hannah")
    message.add_attachment(write_report(tmp_path / "r.docx").read_bytes(),
                           maintype="application", subtype="octet-stream",
                           filename="hil-report.docx")
    write(corpus / "mail/hil.eml", message.as_bytes())
    index = tmp_path / "index"
    report = build(corpus, index, settings, embedder)
    assert report.skipped == [] and report.documents == 3

    store = KeyStore(index)
    keys = {p: store.create(p, p, False)[1] for p in ("alpha", "beta")}
    query = "How quickly did the board detect an injected internal short circuit?"
    with app_client(index) as client:
        def search(who: str, text: str) -> list[dict[str, object]]:
            response = client.post("/v1/search", json={"query": text, "top_k": 10},
                                   headers={"Authorization": f"Bearer {keys[who]}"})
            assert response.status_code == 200
            results: list[dict[str, object]] = response.json()["results"]
            return results

        top = search("alpha", query)[0]
        assert (top["doc_id"], top["path"]) == ("mail/hil.eml/hil-report.docx", "mail/hil.eml")
        assert top["section"] == ("WP3 hardware-in-the-loop validation report > 3. Results > "
                                  "3.1 Detection times")
        assert all(not str(r["path"]).startswith("mail/") for r in search("beta", query))
        risks = search("beta", "Which risks are on the programme risk register?")[0]
        assert (risks["path"], risks["page"], risks["section"]) == (
            "shared/steering.pptx", 4, "Programme risk register")


def test_password_protected_word_file_opens_with_the_variable_access_yaml_names(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    import io

    from msoffcrypto.format.ooxml import OOXMLFile

    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", MANIFEST + 'passwords:\n  "mail/*.docx": PKS_PW_MAIL\n')
    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(write_report(tmp_path / "r.docx").read_bytes())).encrypt(
        "s3cret", encrypted)
    write(corpus / "mail/locked.docx", encrypted.getvalue())
    write(corpus / "shared/note.md", "# Note\n\nA shared note so that a build has something.")
    opened = build(corpus, tmp_path / "i1", settings, embedder, environ={"PKS_PW_MAIL": "s3cret"})
    assert opened.skipped == [] and opened.documents == 2
    wrong = build(corpus, tmp_path / "i2", settings, embedder, environ={"PKS_PW_MAIL": "nope"})
    assert [s.path for s in wrong.skipped] == ["mail/locked.docx"]
    assert wrong.skipped[0].reason.startswith("encrypted: no (valid) password configured")
