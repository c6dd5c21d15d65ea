"""GET /v1/documents/{id}: the original file with the rights of search; hidden == missing."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from search_api.identity.keys import KeyStore
from search_api.identity.principal import Principal
from search_api.retrieval.live import IndexHolder
from search_api.retrieval.stitching import document_text
from tests.conftest import ALL_DOCS, VISIBLE
from tests.deployment import app_client
from tests.factory import write, write_jsonl
from tests.search_api.conftest import Clock, auth

CONTENT_HEADERS = ("content-type", "content-length", "www-authenticate", "cache-control",
                   "content-disposition", "content-security-policy")
FILES = [d for d in ALL_DOCS if "/" in d]  # documents read from their own file
RECORDS = {"gloss-soc": "State of charge", "gloss-fbg": "Fibre Bragg grating"}


def corpus_of(access_index: tuple[Path, BuildReport]) -> Path:
    return Path(access_index[1].corpus)


def get(client: TestClient, key: str | None, doc_id: str):
    return client.get(f"/v1/documents/{doc_id}", headers=auth(key) if key else {})


@pytest.mark.parametrize("who", ["alpha", "beta", "gamma", "delta", "admin"])
def test_each_caller_gets_exactly_the_files_search_would_show(
        client: TestClient, keys: dict[str, str], access_index: tuple[Path, BuildReport],
        who: str) -> None:
    corpus = corpus_of(access_index)
    missing = get(client, keys[who], "no/such/file.md")
    assert missing.status_code == 404
    for doc_id in FILES:
        response = get(client, keys[who], doc_id)
        if who == "admin" or doc_id in VISIBLE[who]:
            assert response.status_code == 200, (who, doc_id, response.text)
            assert response.content == (corpus / doc_id).read_bytes()
        else:  # byte for byte the answer for a document that does not exist
            assert response.status_code == 404
            assert response.content == missing.content
            for name in CONTENT_HEADERS:
                assert response.headers.get(name) == missing.headers.get(name), name


def test_unknown_odd_and_escaping_ids_all_get_the_same_404(
        client: TestClient, keys: dict[str, str]) -> None:
    reference = get(client, keys["alpha"], "beta/sensors.md")
    assert reference.status_code == 404
    assert reference.json() == {"error": {"code": "not_found", "message":
                                          "no document with this id is visible to this key"}}
    for doc_id in ["nothing", "internal/board.md", "gamma/recycling.txt", "drafts/plan.txt",
                   "..%2F..%2Fetc%2Fpasswd", "alpha/../beta/sensors.md", "access.yaml",
                   "shared/glossary.jsonl", "gloss-soc%00", "a" * 500]:
        response = get(client, keys["alpha"], doc_id)
        assert (response.status_code, response.content) == (404, reference.content), doc_id


def test_content_types_pdf_and_jsonl_records(client: TestClient, keys: dict[str, str]) -> None:
    pdf = get(client, keys["alpha"], "alpha/pilot-line.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    md = get(client, keys["beta"], "beta/sensors.md")
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.headers["x-content-type-options"] == "nosniff"
    assert md.headers["content-security-policy"] == "sandbox"
    assert "filename*=UTF-8''sensors.md" in md.headers["content-disposition"]
    for doc_id, title in RECORDS.items():
        record = get(client, keys["delta"], doc_id)
        assert record.status_code == 200
        assert record.headers["content-type"] == "text/plain; charset=utf-8"
        assert record.text.startswith(title) and "{" not in record.text  # the text, not JSON


def test_a_key_is_required(client: TestClient) -> None:
    response = client.get("/v1/documents/shared/overview.md")
    assert response.status_code == 401


@pytest.fixture()
def moved_corpus(access_index: tuple[Path, BuildReport], holder: IndexHolder,
                 tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """The same index served with its corpus copied elsewhere (PKS_CORPUS), free to edit."""
    copy = tmp_path / "corpus"
    shutil.copytree(corpus_of(access_index), copy)
    with app_client(access_index[0], holder=holder, today=Clock(), corpus=copy) as test_client:
        yield test_client, copy


def test_a_changed_removed_or_escaping_file_is_never_served(
        moved_corpus: tuple[TestClient, Path], keys: dict[str, str]) -> None:
    client, corpus = moved_corpus
    assert get(client, keys["alpha"], "alpha/electrolyte.txt").status_code == 200
    (corpus / "alpha/electrolyte.txt").write_text("Something else entirely.")
    changed = get(client, keys["alpha"], "alpha/electrolyte.txt")
    assert changed.status_code == 410 and "changed after it was indexed" in changed.text
    assert b"Something else" not in changed.content
    (corpus / "beta/sensors.md").unlink()
    gone = get(client, keys["beta"], "beta/sensors.md")
    assert gone.status_code == 410 and "removed from the corpus" in gone.text
    outside = corpus.parent / "outside.md"
    outside.write_bytes((corpus / "shared/overview.md").read_bytes())  # same bytes, elsewhere
    (corpus / "shared/overview.md").unlink()
    os.symlink(outside, corpus / "shared/overview.md")
    escaped = get(client, keys["gamma"], "shared/overview.md")
    assert escaped.status_code == 410 and "outside the corpus" in escaped.text
    # A caller who may not see the document still learns nothing about its file.
    hidden = get(client, keys["gamma"], "alpha/electrolyte.txt")
    assert hidden.status_code == 404 and "changed" not in hidden.text


# One export record long enough for several chunks: overlapping neighbours, then a paragraph
# break between two chunks, which the text rebuild must keep apart without repeating the overlap.
LONG_RECORD = " ".join(f"Cycle block {i}: the pouch cells kept {99 - i * 0.1:.1f} percent of "
                       f"their capacity after {100 * i} cycles at 45 degrees." for i in range(12))
LONG_RECORD += "\n\n" + " ".join(f"Note {i}: the swelling stayed under {i / 10:.1f} mm."
                                 for i in range(10))


def mcp_call(client: TestClient, key: str, tool: str, arguments: dict[str, object]) -> dict:
    """One stateless JSON-RPC call to /mcp in process (the MCP tests drive the SDK client)."""
    response = client.post("/mcp", headers={**auth(key), "Accept": "application/json, "
                                            "text/event-stream"},
                           json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                 "params": {"name": tool, "arguments": arguments}})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_rest_download_and_mcp_fetch_return_the_same_text_of_a_record(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    write(tmp_path / "corpus/access.yaml", "partners: [alpha]\nrules:\n  - match: '**'\n"
                                           "    allow: [alpha]\n")
    write_jsonl(tmp_path / "corpus/log.jsonl", [{"_id": "cycling", "title": "Cycling log",
                                                  "text": LONG_RECORD}])
    index = tmp_path / "index"
    report = build(tmp_path / "corpus", index, settings, embedder)
    assert report.chunks >= 3  # several chunks, or there is nothing to rebuild
    key = KeyStore(index).create("alpha", "alpha", False)[1]
    with app_client(index) as client:
        rest = get(client, key, "cycling")
        assert rest.status_code == 200 and rest.headers["content-type"].startswith("text/plain")
        fetched = mcp_call(client, key, "fetch_document", {"doc_id": "cycling"})
    pages = fetched["structuredContent"]["pages"]
    assert rest.text == "\n\n".join(page["text"] for page in pages)
    assert rest.text == f"Cycling log {LONG_RECORD}"  # the record's text, stitched back whole


class Reads:
    """Every SQL statement the generation runs, on whichever request thread, with the id asked
    for written as ID (so that two ids' reads compare)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def install(self, generation: Generation) -> None:
        original = generation._db

        def traced() -> sqlite3.Connection:
            db = original()
            db.set_trace_callback(self.statements.append)
            return db

        generation._db = traced  # type: ignore[method-assign]

    def of(self, doc_id: str, call: Callable[[], object]) -> list[str]:
        self.statements.clear()
        call()
        return [s.replace(doc_id, "ID") for s in self.statements]


def test_a_hidden_and_a_missing_id_take_the_same_reads(
        access_index: tuple[Path, BuildReport], keys: dict[str, str]) -> None:
    """Not just the same answer: the same queries and the same work, so that timing cannot
    tell a hidden document from a missing one (REST download and MCP's text rebuild)."""
    holder = IndexHolder(access_index[0], torch_threads=1)  # its own connections to trace
    reads = Reads()
    reads.install(holder.get().generation)
    index = holder.get()
    beta = index.access.allowed_for(Principal("k", "beta", False), date(2026, 11, 23))
    with app_client(access_index[0], holder=holder) as client:
        for hidden, missing in (("alpha/electrolyte.txt", "alpha/electrolyte.txz"),
                                ("internal/board.md", "no/such/board.md")):
            shown = reads.of(hidden, lambda h=hidden: get(client, keys["beta"], h))
            assert shown and shown == reads.of(missing, lambda m=missing: get(
                client, keys["beta"], m))
            assert reads.of(hidden, lambda h=hidden: document_text(index, h, beta)) == \
                reads.of(missing, lambda m=missing: document_text(index, m, beta)) == shown
        visible = reads.of("beta/sensors.md", lambda: get(client, keys["beta"], "beta/sensors.md"))
        assert len(visible) > len(shown)  # the counting sees what a visible document costs
