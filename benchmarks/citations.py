"""Citations on documents the code has not seen: does each result cite the page its words are on,
and are legacy and accented texts read and found?

    nice -n 10 .venv/bin/python benchmarks/citations.py [--json benchmarks/results/citations.json]

In a scratch directory (never in the repository) it writes, from a seeded generator whose words
the tests do not use:
- eight short four-page text PDFs, each page a few sentences about the document's subject and
  one sentence found on that page only;
- a two-page scanned PDF (text rendered to an image, no text layer), five sentences a page;
- a one-line French note in Windows-1252 that chardet cannot tell from Windows-1250 and
  ISO-8859-16, and longer French (Windows-1252) and Czech (Windows-1250) paragraphs.

It indexes them with `python -m indexer build` as a user would, serves the index with the real
server (benchmarks/harness.py) and asks POST /v1/search for every page-specific sentence, word
for word: a sentence counts when the first result is its document and cites the sentence's page.
The note is asked for without its accents; the paragraphs are compared with what was indexed.
Goals (issue 23): 10 of 10 OCR'd sentences, at least 95 % of the text PDFs' sentences, the note
indexed with a warning and found, both paragraphs read right.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from benchmarks.harness import ROOT, api_keys, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from tests.factory import pdf_bytes  # noqa: E402

SUBJECTS = ["heat pump field trial", "tidal turbine blade survey", "hydrogen valve audit",
            "greenhouse sensor network", "rail bogie fatigue study", "wafer bonding line",
            "offshore cable inspection", "bioreactor scale-up"]
PLACES = ["Tampere", "Porto", "Gdansk", "Aarhus", "Ljubljana", "Bilbao", "Tartu", "Graz",
          "Ghent", "Brno", "Trieste", "Cork"]
THINGS = ["seal", "bearing", "gasket", "manifold", "inverter", "probe", "hinge", "diaphragm",
          "coupling", "damper", "nozzle", "bracket"]
PEOPLE = ["Ilona Varga", "Tomas Lindqvist", "Aino Korhonen", "Marek Dvorsky", "Lea Novak",
          "Jonas Brandt", "Sofia Ferreira", "Pieter Claes"]
FILLER = ["The {s} continued under the agreed protocol, with weekly reviews by both partners.",
          "Measurements of the {s} were logged every ten minutes and checked against the plan.",
          "No safety incident was reported during this period of the {s}.",
          "The partners agreed to keep the {s} on its original schedule.",
          "Raw data of the {s} are kept on the shared drive for later analysis.",
          "The steering group was informed of the progress of the {s}."]
SPECIFIC = ["In {p} the {t} of unit {n} failed after {m} cycles and was replaced by {w}.",
            "{w} measured a {t} leak rate of {m} millilitres per hour at the {p} site.",
            "The {t} supplier in {p} shipped batch {n} with {m} parts, two weeks late.",
            "A crack of {m} micrometres was found in the {t} of frame {n} at {p}.",
            "{w} approved the redesigned {t} for {p} on day {n} of the campaign."]
SCAN = [["The tender board of {p} opened {n} sealed bids for the {t} contract.",
         "Only bids signed by {w} before noon were accepted.",
         "The cheapest bid came from a workshop in {q} at {m} euros.",
         "A second round was ruled out because the budget was fixed.",
         "The minutes were countersigned by the harbour master."],
        ["Delivery of the first {t} is due in week {n} at the {q} quay.",
         "Penalties of {m} euros a day apply after that week.",
         "{w} will inspect every {t} before it is bolted in place.",
         "Spare parts must be stocked in {p} for five years.",
         "Disputes go to the chamber of commerce arbitration panel."]]
NOTE = "Genève été dépôt café vérifié équipe, révision 7."  # chardet: cp1252, cp1250 or ...?
NOTE_QUERY = "Geneve ete depot cafe verifie equipe revision 7"
FRENCH = ("Café crème au bureau de Genève: le partenaire a envoyé le procès-verbal de la réunion, "
          "et la société prévoit une deuxième étape à Lyon pour l'équipe de révision.")
CZECH = ("Příliš žluťoučký kůň úpěl ďábelské ódy. Zkouška baterie proběhla úspěšně a výsledky "
         "měření odeslal technik z Plzně.")
MANIFEST = "partners: [reader]\nrules:\n  - match: '**'\n    allow: '*'\n"


def fill(template: str, rng: random.Random, subject: str) -> str:
    return template.format(s=subject, p=rng.choice(PLACES), q=rng.choice(PLACES),
                           t=rng.choice(THINGS), w=rng.choice(PEOPLE), n=rng.randint(2, 99),
                           m=rng.randint(100, 9999))


def text_pdfs(corpus: Path, rng: random.Random) -> list[tuple[str, int, str]]:
    """Eight four-page PDFs; (document, page, its page-specific sentence) for each page."""
    asked = []
    for number, subject in enumerate(SUBJECTS, start=1):
        pages = []
        for page in range(1, 5):
            common = [fill(t, rng, subject) for t in rng.sample(FILLER, rng.randint(2, 4))]
            own = fill(rng.choice(SPECIFIC), rng, subject)
            common.insert(rng.randint(0, len(common)), own)
            pages.append(" ".join(common))
            asked.append((f"reports/report-{number}.pdf", page, own))
        path = corpus / "reports" / f"report-{number}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf_bytes(pages, title=f"{subject.capitalize()} report"))
    return asked


def scanned_pdf(corpus: Path, rng: random.Random) -> list[tuple[str, int, str]]:
    """A two-page scan: each page's sentences rendered to an image, no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=26)
    images, asked = [], []
    for page, templates in enumerate(SCAN, start=1):
        image = Image.new("L", (1240, 1754), 250)  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        for line, template in enumerate(templates):
            sentence = fill(template, rng, "tender")
            draw.text((90, 140 + 70 * line), sentence, fill=20, font=font)
            asked.append(("scans/tender-minutes.pdf", page, sentence))
        images.append(image.rotate(0.4, fillcolor=250))
    path = corpus / "scans" / "tender-minutes.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return asked


def legacy_texts(corpus: Path) -> None:
    (corpus / "notes").mkdir(parents=True, exist_ok=True)
    (corpus / "notes" / "geneve.txt").write_bytes(NOTE.encode("cp1252"))
    (corpus / "notes" / "lyon.txt").write_bytes(FRENCH.encode("cp1252"))
    (corpus / "notes" / "plzen.txt").write_bytes(CZECH.encode("cp1250"))


def unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def ask(client: httpx.Client, url: str, key: str, query: str, mode: str = "hybrid") -> list[dict]:
    response = client.post(f"{url}/v1/search", headers={"Authorization": f"Bearer {key}"},
                           json={"query": query, "top_k": 10, "mode": mode})
    response.raise_for_status()
    return list(response.json()["results"])


def cited(client: httpx.Client, url: str, key: str,
          asked: list[tuple[str, int, str]]) -> dict[str, object]:
    """For each sentence asked for word for word: is the first result its document
    (`first_in_its_file`), does the first result of its document cite the sentence's page
    (`cited_with_its_page`: the citation alone), and both (`first_and_cited`)."""
    first, right, both, misses = 0, 0, 0, []
    for doc, page, sentence in asked:
        results = ask(client, url, key, sentence)
        top = results[0] if results else {}
        mine = next((r for r in results if r["doc_id"] == doc), {})
        first += top.get("doc_id") == doc
        right += mine.get("page") == page
        both += top.get("doc_id") == doc and mine.get("page") == page
        if top.get("doc_id") != doc or mine.get("page") != page:
            misses.append({"sentence": sentence, "doc": doc, "page": page,
                           "first_result": top.get("doc_id"), "cited": mine.get("page"),
                           "pages": mine.get("pages")})
    return {"sentences": len(asked), "first_in_its_file": first, "cited_with_its_page": right,
            "first_and_cited": both, "share_cited": round(right / len(asked), 3),
            "misses": misses[:10]}


def citing_cost(index: Path, queries: list[str]) -> dict[str, object]:
    """CPU time of choosing the cited pages of an answer (citing.py, on its passages already
    read) against the CPU time of the whole search that made the answer, in this process."""
    from datetime import date

    from indexer.embed.embedder import embedder_for
    from indexer.settings import IndexerSettings
    from indexer.store.reader import Generation
    from search_api.identity.principal import Principal
    from search_api.retrieval.citing import cite
    from search_api.retrieval.live import load_index
    from search_api.retrieval.search import search

    loaded = load_index(Generation.open_live(index), embedder_for(IndexerSettings()), threads=1)
    admin = loaded.access.allowed_for(Principal("citations", None, True), date.today())
    analyzer = loaded.generation.analyzer()
    answers = {q: [p.chunk_id for p, _ in search(loaded, q, admin, 10).results] for q in queries}
    started = time.process_time()
    for query in queries:
        search(loaded, query, admin, 10)
    searching = time.process_time() - started
    passages = {q: loaded.generation.passages(ids) for q, ids in answers.items()}
    spanning = sum(1 for found in passages.values() for p in found.values() if p.breaks)
    started = time.process_time()
    for query in queries:
        cite(analyzer, query, passages[query])
    citing = time.process_time() - started
    return {"answers": len(queries), "results": sum(map(len, answers.values())),
            "spanning_results": spanning,
            "search_cpu_ms_per_answer": round(searching * 1000 / len(queries), 2),
            "citing_cpu_ms_per_answer": round(citing * 1000 / len(queries), 3),
            "citing_share_of_search": round(citing / searching, 4)}


def run(scratch: Path) -> dict[str, object]:
    rng = random.Random(23)
    corpus, index = scratch / "corpus", scratch / "index"
    corpus.mkdir()
    (corpus / "access.yaml").write_text(MANIFEST)
    pdfs = text_pdfs(corpus, rng)
    scan = scanned_pdf(corpus, rng)
    legacy_texts(corpus)
    started = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "indexer", "build", "--corpus", str(corpus),
                            "--index", str(index), "--report", str(scratch / "report.json"),
                            "--no-progress"],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 1)
    if build.returncode not in (0, 3):
        raise RuntimeError(f"the build failed ({build.returncode}): {build.stderr[-2000:]}")
    report = json.loads((scratch / "report.json").read_text())
    warnings = {w["path"]: w["message"] for w in report["warnings"]}
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    from indexer.store.reader import Generation

    generation = Generation.open_live(index)
    texts = {doc: " ".join(c.text for c in chunks) for doc, chunks in generation.chunks_of(
        ["notes/geneve.txt", "notes/lyon.txt", "notes/plzen.txt"]).items() if chunks}
    with serving(index) as server, api_keys(index, ["reader"]) as keys, \
            httpx.Client(timeout=60) as client:
        key = keys.by_partner["reader"]
        out: dict[str, object] = {
            "build_seconds": seconds, "exit_code": build.returncode,
            "text_pdfs": cited(client, server.url, key, pdfs),
            "ocr": cited(client, server.url, key, scan),
        }
        note = {mode: [r["doc_id"] for r in ask(client, server.url, key, NOTE_QUERY, mode)][:1]
                == ["notes/geneve.txt"] for mode in ("hybrid", "lexical", "dense")}
    out["note"] = {"indexed": "notes/geneve.txt" in texts, "skipped": skipped.get(
        "notes/geneve.txt"), "warning": warnings.get("notes/geneve.txt"),
        "read_right": texts.get("notes/geneve.txt") == NOTE,
        "query": NOTE_QUERY, "found_first": note}
    out["citing_cost"] = citing_cost(index, [sentence for _, _, sentence in pdfs + scan])
    out["paragraphs"] = {
        "cp1252": {"read_right": texts.get("notes/lyon.txt") == FRENCH,
                   "warning": warnings.get("notes/lyon.txt")},
        "cp1250": {"read_right": texts.get("notes/plzen.txt") == CZECH,
                   "warning": warnings.get("notes/plzen.txt")}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures here (e.g. benchmarks/results/citations.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pks-citations-") as scratch:
        figures = run(Path(scratch))
    header = {"benchmark": "citations", "machine": cpu()}
    print(json.dumps({**header, **figures}, indent=2))
    if args.json is not None:
        write_results(args.json, header, figures)


if __name__ == "__main__":
    main()
