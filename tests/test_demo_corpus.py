"""The demo corpus behind `make serve`: the README's example queries answer as documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from search_api.identity.keys import KeyStore
from tests.deployment import app_client

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[1] / "corpora" / "demo"
PARTNERS = ("acme", "globex", "initech", "umbrella")

# (query, expected first file for those who may see it, partners who may see it)
EXAMPLES = [
    ("Who owns an invention that one partner makes on its own during the programme, and how "
     "much notice is needed before publishing?",
     "shared/programme-charter.md", set(PARTNERS)),
    ("What ionic conductivity did Acme's argyrodite electrolyte batches reach, and which one "
     "was chosen for the pilot line?",
     "acme/solid-state-electrolyte-results.md", {"acme"}),
    ("Which argyrodite electrolyte batch did Acme choose for the pilot line, and what ionic "
     "conductivity did it reach?", "acme/solid-state-electrolyte-results.md", {"acme"}),
    ("How accurate is the thin-film temperature sensor after calibration against reference "
     "probes?",
     "globex/sensor-calibration-report.md", {"globex"}),
    ("What happened to the integrated cells with a sensor inside after 300 cycles?",
     "joint/acme-globex/cell-sensor-integration.md", {"acme", "globex"}),
    ("How much lithium, nickel and cobalt could be recovered from shredded end-of-life cells, "
     "and what would a recycling plant cost?",
     "umbrella/recycling-feasibility-study.md", set()),
    ("Does the Northwind board intend to acquire a stake in Acme, and how much would it offer?",
     "internal/board-notes.md", set()),
    ("How accurate was the BMS firmware's state-of-charge estimate over the forklift "
     "duty-cycle tests?",
     "initech/battery-management-firmware.md", {"initech"}),
]

# Office files and a scanned page: (query, file, page/slide/sheet, section, ocr, readers).
CITED = [
    ("What are the main risks on the programme risk register, and how will each be mitigated?",
     "shared/steering-committee-2026-11.pptx", 4, "Programme risk register", False,
     set(PARTNERS)),
    ("How quickly did the battery management board detect an injected internal short circuit "
     "on the hardware-in-the-loop bench?",
     "initech/hil-validation-report.docx", None,
     "WP3 hardware-in-the-loop validation report > 3. Results > 3.1 Detection times", False,
     {"initech"}),
    ("What capacity retention did the pilot-line pouch cells keep after 500 cycles at 45 °C?",
     "acme/pilot-cell-cycling.xlsx", 2, "Cycling 45C", False, {"acme"}),
    ("Until when does the signed Amendment No. 1 extend the Helios programme, and how much "
     "extra funding does Northwind add?",
     "shared/signed/charter-amendment-1-signed.pdf", 1, None, True, set(PARTNERS)),
]
EXAMPLES += [(query, path, readers) for query, path, _, _, _, readers in CITED]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory,
         embedder: Embedder) -> Iterator[tuple[TestClient, dict[str, str]]]:
    index = tmp_path_factory.mktemp("demo") / "index"
    report = build(DEMO, index, IndexerSettings(progress=False), embedder)
    assert report.skipped == [] and report.documents >= 10
    store = KeyStore(index)
    keys = {p: store.create(p, p, False)[1] for p in PARTNERS}
    keys["admin"] = store.create("admin", None, True)[1]
    with app_client(index) as client:
        yield client, keys


def top_paths(client: TestClient, key: str, query: str, k: int) -> list[str]:
    response = client.post("/v1/search", json={"query": query, "top_k": k},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    return [r["path"] for r in response.json()["results"]]


@pytest.mark.parametrize("query, expected, readers", EXAMPLES)
def test_example_queries(demo: tuple[TestClient, dict[str, str]], query: str, expected: str,
                         readers: set[str]) -> None:
    client, keys = demo
    assert top_paths(client, keys["admin"], query, 1) == [expected]
    for partner in PARTNERS:
        paths = top_paths(client, keys[partner], query, 100)
        if partner in readers:
            assert paths[0] == expected
        else:
            assert expected not in paths


def test_roadmap_pdf_answers_with_its_page(demo: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = demo
    response = client.post("/v1/search", json={
        "query": "When will the demonstrator packs go through thermal propagation and crush tests?",
        "top_k": 1}, headers={"Authorization": f"Bearer {keys['initech']}"})
    top = response.json()["results"][0]
    assert (top["path"], top["page"]) == ("shared/roadmap-2027.pdf", 3)


@pytest.mark.parametrize("query, expected, page, section, ocr, readers", CITED)
def test_new_formats_are_cited_by_slide_page_sheet_and_section(
        demo: tuple[TestClient, dict[str, str]], query: str, expected: str, page: int | None,
        section: str | None, ocr: bool, readers: set[str]) -> None:
    client, keys = demo
    for who in sorted(readers) + ["admin"]:
        response = client.post("/v1/search", json={"query": query, "top_k": 1},
                               headers={"Authorization": f"Bearer {keys[who]}"})
        top = response.json()["results"][0]
        assert (top["path"], top["page"], top["section"], top["ocr"]) == (
            expected, page, section, ocr), who
