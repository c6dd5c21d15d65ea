"""Word, PowerPoint, Excel, HTML and e-mail: real files saved by the applications themselves
(../shared/eval/office, from the markitdown project) and malformed ones, through load_file."""

from __future__ import annotations

import io
import sys
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pptx
import pytest
from msoffcrypto.format.ooxml import OOXMLFile

from indexer.load.loader import Document, LoadOptions, LoadWarning, Skipped, load_file
from tests.environment import EVAL
from tests.factory import pdf_bytes, write
from tests.factory_office import fuzzed_docx, huge_xml_xlsx, write_report, write_workbook

OFFICE = EVAL / "office"
needs_office = pytest.mark.needs_eval("office")


def load(path: Path, options: LoadOptions | None = None) -> list[object]:
    return list(load_file(path, path.name, options or LoadOptions(ocr=False)))


def only_doc(path: Path, options: LoadOptions | None = None) -> Document:
    results = load(path, options)
    docs = [r for r in results if isinstance(r, Document)]
    assert len(docs) == 1, results
    return docs[0]


def full_text(doc: Document) -> str:
    return "\n".join(p.text for p in doc.pages)


@needs_office
def test_word_report_keeps_headings_markers_and_reading_order() -> None:
    doc = only_doc(OFFICE / "test.docx")
    text = full_text(doc)
    for marker in ("314b0a30-5b04-470b-b9f7-eed2c2bec74a", "49e168b7-d2ae-407f-a055-2167576f39a1",
                   "d666f1f7-46cb-42bd-9a39-9a39cf2a509f"):
        assert marker in text
    assert doc.title == "AutoGen: Enabling Next-Gen LLM Applications via Multi-Agent Conversation"
    sections = [p.section for p in doc.pages]
    assert any(s and s.endswith("> Abstract") for s in sections)
    heading = next(p for p in doc.pages if "d666f1f7" in (p.section or ""))
    assert heading.section and heading.section.endswith("Introduction > "
                                                         "d666f1f7-46cb-42bd-9a39-9a39cf2a509f")
    assert text.index("Abstract") < text.index("Introduction")  # reading order
    assert all(p.number is None for p in doc.pages)


@needs_office
def test_word_comments_and_equations_are_text() -> None:
    commented = full_text(only_doc(OFFICE / "test_with_comment.docx"))
    assert "This is a test comment. 12df-321a" in commented
    assert "Yet another comment in the doc. 55yiyi-asd09" in commented
    equations = full_text(only_doc(OFFICE / "equations.docx"))
    assert "From Eq. 36.1.3" in equations and "sin" in equations and "θ" in equations


@needs_office
def test_powerpoint_slides_are_pages_with_their_numbers() -> None:
    path = OFFICE / "test.pptx"
    deck = pptx.Presentation(str(path))  # where each marker really is, read independently
    expected = {}
    markers = ["2cdda5c8-e50e-4db4-b5f0-9722a649f455", "04191ea8-5c73-4215-a1d3-1cfb43aaaf12",
               "44bf7d06-5e7a-4a40-a2e1-a2e42ef28c8a", "1b92870d-e3b5-4e65-8153-919f4ff45592",
               "a3f6004b-6f4f-4ea8-bee3-3741f4dc385f",
               "This phrase of the caption is Human-written."]
    for number, slide in enumerate(deck.slides, start=1):
        parts = [slide.part, *(rel.target_part for rel in slide.part.rels.values()
                               if not rel.is_external)]
        xml = b"".join(part.blob for part in parts
                       if part.content_type.endswith("+xml")).decode("utf-8", "replace")
        expected.update({m: number for m in markers if m in xml})
    assert set(expected) == set(markers)
    doc = only_doc(path)
    got = {m: p.number for p in doc.pages for m in markers if m in p.text}
    assert got == expected
    assert [p.number for p in doc.pages] == list(range(1, len(deck.slides) + 1))
    table_slide = next(p for p in doc.pages if "1b92870d" in p.text)
    assert "ColD: 1b92870d-e3b5-4e65-8153-919f4ff45592" in table_slide.text  # header kept
    assert table_slide.section == "A table to test parsing:"
    chart = next(p for p in doc.pages if "a3f6004b" in p.text)
    assert "Chart: a3f6004b-6f4f-4ea8-bee3-3741f4dc385f" in chart.text


@needs_office
def test_excel_sheets_are_pages_named_and_numbered() -> None:
    doc = only_doc(OFFICE / "test.xlsx")
    assert [(p.number, p.section) for p in doc.pages] == [
        (1, "Sheet1"), (2, "09060124-b5e7-4717-9d07-3c046eb")]
    assert "6ff4173b-42a5-4784-9b19-f49caff4d93d" in doc.pages[0].text
    assert "ColD: affc7dad-52dc-4b98-9b5d-51e65d8a8ad0" in doc.pages[1].text


def test_a_large_sheet_is_cut_with_a_warning(tmp_path: Path) -> None:
    book = write_workbook(tmp_path / "cycling.xlsx")
    results = load(book, LoadOptions(ocr=False, sheet_max_rows=5))
    warnings = [r for r in results if isinstance(r, LoadWarning)]
    assert len(warnings) == 1 and "'Formation'" in warnings[0].message
    assert "cut after 5 rows" in warnings[0].message
    doc = next(r for r in results if isinstance(r, Document))
    assert "P-104" in doc.pages[0].text and "P-105" not in doc.pages[0].text


@needs_office
@pytest.mark.parametrize("name, found, absent", [
    ("test_blog.html", ["Large language models (LLMs) are powerful tools that can generate "
                        "natural language texts"], ["function(", "Skip to main content"]),
    ("test_wikipedia.html", ["Microsoft entered the operating system (OS) business in 1980"],
     ["move to sidebar", "You are encouraged to create an account", "Jump to content"]),
])
def test_html_main_text_only(name: str, found: list[str], absent: list[str]) -> None:
    doc = only_doc(OFFICE / name)
    text = full_text(doc)
    assert all(f in text for f in found)
    assert not any(a in text for a in absent)
    assert doc.title and doc.title != Path(name).stem


@needs_office
def test_html_heading_sections_and_tables_cite_well() -> None:
    doc = only_doc(OFFICE / "test_wikipedia.html")
    founding = next(p for p in doc.pages if "business in 1980" in p.text)
    assert founding.section == "Microsoft > History > 1972–1985: Founding"
    assert "Founded: April 4, 1975 in Albuquerque, New Mexico, U.S." in doc.pages[0].text
    assert any("Year: 2005; " in p.text for p in doc.pages)  # header row kept with its values


def test_html_declared_charset_is_used(tmp_path: Path) -> None:
    page = ("<html><head><meta charset='iso-8859-1'><title>Prüfbericht</title></head><body>"
            "<nav>Home | Login</nav><main><p>Die Zelle erreichte 93 % Kapazität nach 500 "
            "Zyklen bei 45 °C.</p></main><script>var x = 1;</script></body></html>")
    write(tmp_path / "bericht.htm", page.encode("iso-8859-1"))
    doc = only_doc(tmp_path / "bericht.htm")
    assert doc.title == "Prüfbericht"
    assert "93 % Kapazität nach 500 Zyklen bei 45 °C" in full_text(doc)
    assert "var x" not in full_text(doc)


@needs_office
def test_emails_keep_subject_sender_recipients_date_and_body() -> None:
    plain = only_doc(OFFICE / "test_email.eml")
    assert plain.title == "Test Email Message"
    text = full_text(plain)
    for part in ("From: test.sender@example.com", "To: test.recipient@example.com",
                 "Cc: test.cc@example.com", "Date: Fri, 21 Mar 2026 10:00:00 -0700",
                 "This is the body of the test email message."):
        assert part in text
    html = full_text(only_doc(OFFICE / "test_email_html.eml"))
    assert "This is the HTML version of the email." in html and "<b>" not in html


def test_email_attachments_are_documents_under_the_mails_path(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "elena.marsh@acme.example", "ravi.okafor@globex.example"
    message["Subject"], message["Date"] = "Cycling results", "Mon, 2 Nov 2026 09:00:00 +0100"
    message.set_content("Dear Ravi, the 45 °C cycling results are attached.")
    message.add_attachment(write_report(tmp_path / "r.docx").read_bytes(),
                           maintype="application", subtype="octet-stream",
                           filename="hil-report.docx")
    message.add_attachment(pdf_bytes(["Attached pilot line schedule for PL-2."]),
                           maintype="application", subtype="pdf", filename="schedule.pdf")
    message.add_attachment(b"\x89PNG not indexed", maintype="image", subtype="png",
                           filename="logo.png")
    write(tmp_path / "mail/results.eml", message.as_bytes())
    results = list(load_file(tmp_path / "mail/results.eml", "mail/results.eml",
                             LoadOptions(ocr=False)))
    docs = {r.doc_id: r for r in results if isinstance(r, Document)}
    assert set(docs) == {"mail/results.eml", "mail/results.eml/hil-report.docx",
                         "mail/results.eml/schedule.pdf"}
    assert all(d.path == "mail/results.eml" for d in docs.values())  # the e-mail's access rule
    assert docs["mail/results.eml/schedule.pdf"].pages[0].number == 1
    assert "140 ms" in full_text(docs["mail/results.eml/hil-report.docx"])
    assert "Cycling results" in docs["mail/results.eml/schedule.pdf"].title


def _encrypt(data: bytes, password: str) -> bytes:
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def test_password_protected_office_file_opens_only_with_its_password(tmp_path: Path) -> None:
    plain = write_report(tmp_path / "plain.docx").read_bytes()
    write(tmp_path / "locked.docx", _encrypt(plain, "s3cret"))
    opened = only_doc(tmp_path / "locked.docx", LoadOptions(ocr=False, password="s3cret"))
    assert "140 ms" in full_text(opened)
    for options in (LoadOptions(ocr=False), LoadOptions(ocr=False, password="wrong")):
        results = load(tmp_path / "locked.docx", options)
        assert len(results) == 1 and isinstance(results[0], Skipped)
        assert results[0].reason.startswith("encrypted: no (valid) password configured")


def test_malformed_office_files_are_skipped_with_one_line_reasons(tmp_path: Path) -> None:
    real_docx = write_report(tmp_path / "real.docx").read_bytes()
    real_xlsx = write_workbook(tmp_path / "real.xlsx").read_bytes()
    bad = {
        "truncated.docx": real_docx[: len(real_docx) // 2],
        "fuzzed.docx": fuzzed_docx(real_docx),
        "really-a-pdf.docx": pdf_bytes(["I am a PDF"]),
        "bomb.xlsx": huge_xml_xlsx(real_xlsx, 3),
        "no-main-part.pptx": _zip({"[Content_Types].xml": b"<Types/>"}),
        "legacy.xlsx": bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 600,
        "random.pptx": b"PK\x03\x04" + bytes(range(256)) * 4,
        "broken.html": b"<html><body>\x00\x00</body>",
        "not-a-mail.eml": b"\x00\x01 binary junk",
    }
    for name, data in bad.items():
        write(tmp_path / "bad" / name, data)
    reasons = {}
    for name in bad:
        results = load(tmp_path / "bad" / name, LoadOptions(ocr=False, max_unzipped_mb=2))
        assert len(results) == 1 and isinstance(results[0], Skipped), (name, results)
        reasons[name] = results[0].reason
        assert "\n" not in reasons[name]
    assert reasons["truncated.docx"].startswith("not a valid Word document: not a ZIP package")
    assert reasons["fuzzed.docx"].startswith("corrupt or unreadable Word document")
    assert reasons["really-a-pdf.docx"] == ("not a valid Word document: the file is a PDF "
                                            "(rename it to .pdf)")
    assert "over the 2 MB limit (a zip bomb?)" in reasons["bomb.xlsx"]
    assert "has no ppt/presentation.xml" in reasons["no-main-part.pptx"]
    assert reasons["legacy.xlsx"].startswith("a legacy binary Office file")
    assert reasons["random.pptx"].startswith("not a valid PowerPoint deck")
    assert reasons["not-a-mail.eml"].startswith("not an e-mail")
    # and the good files beside them still load
    assert only_doc(tmp_path / "real.xlsx").pages[1].section == "Cycling 45C"


def test_a_format_whose_parser_is_missing_is_skipped_not_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_report(tmp_path / "r.docx")
    monkeypatch.setitem(sys.modules, "docx", None)  # as if python-docx were not installed
    monkeypatch.delitem(sys.modules, "indexer.load.formats.docx", raising=False)
    results = load(tmp_path / "r.docx")
    assert len(results) == 1 and isinstance(results[0], Skipped)
    assert results[0].reason.startswith("no parser for .docx files is installed (python-docx")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_word_headers_footers_once_and_footnotes_kept(tmp_path: Path) -> None:
    doc = only_doc(write_report(tmp_path / "r.docx", footnote="Measured on board revision B."))
    sections = {p.section: p.text for p in doc.pages}
    assert sections["Footnotes"] == "Measured on board revision B."
    assert full_text(doc).count("Initech confidential: Helios WP3") == 1
    assert "Comment by Hannah Kerr: Add the revision C retest date" in sections["Comments"]
    detection = sections["WP3 hardware-in-the-loop validation report > 3. Results > "
                         "3.1 Detection times"]
    assert "Injected fault: Internal short circuit (10 ohm); Detection time: 140 ms" in detection


def test_pdf_bookmarks_give_each_page_its_section(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(
        ["Cover page.", "Aim of the study.", "Cycling results.", "More cycling results."]))))
    results = writer.add_outline_item(title="2 Results", page_number=2)
    writer.add_outline_item(title="1 Aim", page_number=1)
    writer.add_outline_item(title="2.1 Cycling", page_number=2, parent=results)
    writer.write(tmp_path / "report.pdf")
    doc = only_doc(tmp_path / "report.pdf")
    assert [(p.number, p.section) for p in doc.pages] == [
        (1, None), (2, "1 Aim"), (3, "2 Results > 2.1 Cycling"), (4, "2 Results > 2.1 Cycling")]
