"""The intranet search page in a real browser (Playwright driving Debian's Chromium), offline
/docs, and single sign-on through a trusted header, all against a real uvicorn server on loopback.

The server trusts the user header only from 127.0.0.2 (its "SSO proxy"); the browser and the
other HTTP clients connect from 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import expect

from indexer.build import build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from search_api.identity.keys import KeyStore
from tests.browser import PHONE, loopback_tab
from tests.conftest import TEXTS, VISIBLE, make_access_corpus
from tests.deployment import serve
from tests.factory import write

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROXY = "127.0.0.2"
USERS = """\
admins: [carol@host.example]
partners:
  alpha: [alice@alpha.example]
  beta: [bob@beta.example]
"""
MARKUP_PATH = "shared/markup-notes.txt"
MARKUP = ('Release notes of the MARKUP tracker: <img src=x onerror="window.pwned=1"> and '
          '<script>window.pwned=2</script> and <b>bold claims</b> & entities like &amp; stay text.')
ACCENTED_PATH = "shared/visite-geneve.txt"
ACCENTED = "Compte rendu: l'équipe de révision a visité le dépôt de Genève en novembre."
SEES = {who: docs | {MARKUP_PATH, ACCENTED_PATH}  # what each partner sees here
        for who, docs in VISIBLE.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
           embedder: Embedder) -> Iterator[dict[str, object]]:
    """The access corpus plus one shared file of markup, served by a real server."""
    base = tmp_path_factory.mktemp("page")
    corpus = make_access_corpus(base / "corpus")
    write(corpus / MARKUP_PATH, MARKUP)
    write(corpus / ACCENTED_PATH, ACCENTED)
    index = base / "index"
    build(corpus, index, settings, embedder)
    users = base / "users.yaml"
    users.write_text(USERS)
    store = KeyStore(index)
    keys = {p: store.create(f"page {p}", p, False)[1] for p in SEES}
    keys["admin"] = store.create("page admin", None, True)[1]
    env = {"PKS_RELOAD_SECONDS": "0", "PKS_TRUST_USER_HEADER": "true",
           "PKS_TRUSTED_PROXIES": PROXY, "PKS_USERS_FILE": str(users)}
    with serve(index, env) as url:
        yield {"url": url, "port": urlparse(url).port, "keys": keys, "corpus": corpus}


def search_from(server: dict, source: str, headers: dict[str, str],
                query: str = "sensor electrolyte programme") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.post(f"http://127.0.0.1:{server['port']}/v1/search",
                           json={"query": query, "top_k": 50}, headers=headers)


# ---- single sign-on over HTTP -----------------------------------------------------------------

def test_user_header_from_the_trusted_proxy_signs_the_user_in(server: dict) -> None:
    alice = search_from(server, PROXY, {"X-Forwarded-User": "alice@alpha.example"})
    assert alice.status_code == 200
    docs = {r["doc_id"] for r in alice.json()["results"]}
    assert docs and docs <= SEES["alpha"] and "alpha/electrolyte.txt" in docs
    bob = search_from(server, PROXY, {"X-Forwarded-User": "Bob@Beta.example"})  # any case
    assert {r["doc_id"] for r in bob.json()["results"]} <= SEES["beta"]
    carol = search_from(server, PROXY, {"X-Forwarded-User": "carol@host.example"})
    assert all("visible_to" in r for r in carol.json()["results"])  # an admin
    stranger = search_from(server, PROXY, {"X-Forwarded-User": "mallory@else.example"})
    assert stranger.status_code == 401 and "not in the users table" in stranger.text
    # From the proxy without the header, the key decides as usual.
    keyed = search_from(server, PROXY, {"Authorization": f"Bearer {server['keys']['beta']}"})
    assert {r["doc_id"] for r in keyed.json()["results"]} <= SEES["beta"]


def test_user_header_from_any_other_address_is_ignored(server: dict) -> None:
    for headers in ({"X-Forwarded-User": "carol@host.example"},
                    {"X-Forwarded-User": "carol@host.example", "X-Forwarded-For": PROXY,
                     "Forwarded": f"for={PROXY}", "X-Real-IP": PROXY}):
        refused = search_from(server, "127.0.0.1", headers)
        assert refused.status_code == 401 and "missing API key" in refused.text
    # With a key, the header is ignored: the key's partner decides, not the named admin.
    beta = search_from(server, "127.0.0.1", {"X-Forwarded-User": "carol@host.example",
                                             "Authorization": f"Bearer {server['keys']['beta']}"})
    assert beta.status_code == 200
    results = beta.json()["results"]
    assert results and {r["doc_id"] for r in results} <= SEES["beta"]
    assert all("visible_to" not in r for r in results)


# ---- the page in Chromium ---------------------------------------------------------------------

def sign_in_and_search(page, server: dict, who: str, query: str) -> None:
    page.goto(server["url"] + "/")
    page.get_by_label("Search for").fill(query)
    page.keyboard.press("Enter")
    page.get_by_label("Your API key").fill(server["keys"][who])
    page.keyboard.press("Enter")
    page.locator("#result-list li").first.wait_for()


def test_search_shows_highlighted_results_and_never_another_partners_passage(
        page, server: dict, tmp_path: Path) -> None:
    page.goto(server["url"] + "/")
    page.get_by_label("Search for").fill("OSPREY fibre Bragg grating strain sensor drift")
    page.keyboard.press("Enter")
    key_form = page.locator("#key-form")
    key_form.wait_for()  # no key yet: the page asks for one (401 state)
    assert "Enter your API key" in page.locator("#status").inner_text()
    page.get_by_label("Your API key").fill(server["keys"]["alpha"])
    page.keyboard.press("Enter")
    page.locator("#result-list li").first.wait_for()
    assert key_form.is_hidden()
    assert "results for" in page.locator("#status").inner_text()
    paths = page.locator(".result .path").all_inner_texts()
    assert paths and all(p in {"alpha/pilot-line.pdf", "shared/glossary.jsonl"}
                         or p in SEES["alpha"] for p in paths)
    body = page.locator("#result-list").inner_text()
    assert "OSPREY" not in body and "salt spray" not in body  # beta's passage never shows
    marks = {m.lower() for m in page.locator(".passage mark").all_inner_texts()}
    assert marks & {"fibre", "bragg", "grating", "strain", "sensor"}
    assert re.match(r"score \d", page.locator(".score").first.inner_text())
    assert page.locator(".rights").count() == 0  # partners see nothing of others' rights
    assert page.evaluate("sessionStorage.getItem('pks.apiKey')") == server["keys"]["alpha"]
    page.screenshot(path=str(tmp_path / "search-page.png"), full_page=True)
    # A second search in the same tab does not ask again.
    page.get_by_label("Search for").fill("dry room dew point of the pilot line")
    page.keyboard.press("Enter")
    page.locator(".result .path", has_text="alpha/pilot-line.pdf").first.wait_for()
    assert key_form.is_hidden()
    pdf = page.locator("a.doc-link[href*='pilot-line.pdf']").first
    assert (pdf.get_attribute("href") or "").endswith(("#page=1", "#page=2"))


def test_passages_are_shown_as_text_never_as_markup(page, server: dict) -> None:
    sign_in_and_search(page, server, "delta", "release notes of the MARKUP tracker")
    first = page.locator(".result").first
    assert first.locator(".path").inner_text() == MARKUP_PATH
    assert first.locator(".passage").inner_text() == MARKUP
    assert first.locator(".passage mark").first.inner_text().lower() in {"release", "markup"}
    assert page.locator("#result-list img, #result-list script, #result-list b").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_keyboard_moves_between_results_and_opens_a_document(page, server: dict) -> None:
    sign_in_and_search(page, server, "beta", "fibre Bragg grating strain sensors drift")
    links = page.locator("a.doc-link")
    assert links.count() >= 2
    page.get_by_label("Search for").focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == "result-0"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == "result-1"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.id") == "result-0"
    assert page.locator("#result-0").get_attribute("data-doc") == "beta/sensors.md"
    with page.expect_popup() as popup_info:
        page.keyboard.press("Enter")
    popup = popup_info.value
    popup.wait_for_url("blob:**")
    assert popup.locator("body").inner_text().strip() == TEXTS["beta/sensors.md"].strip()
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.id") == "q"


def test_pdf_opens_at_the_page_its_words_are_on(page, server: dict) -> None:
    """The PDF's one chunk runs from page 1 into page 2; the words asked for are on page 2."""
    sign_in_and_search(page, server, "alpha", "first cycle efficiency of cell formation")
    link = page.locator("a.doc-link[data-doc='alpha/pilot-line.pdf']").first
    assert link.get_attribute("data-page") == "2"
    result = page.locator(".result", has=link)
    assert result.locator(".page").inner_text() == "page 2 (pages 1–2)"
    with page.expect_popup() as popup_info:
        link.click()
    popup = popup_info.value
    popup.wait_for_url("blob:**")
    assert popup.url.endswith("#page=2")
    assert "key" not in popup.url.lower() and server["keys"]["alpha"] not in popup.url


def test_an_unaccented_query_marks_the_accented_words(page, server: dict) -> None:
    sign_in_and_search(page, server, "beta", "Geneve depot equipe revision")
    first = page.locator(".result").first
    assert first.locator(".path").inner_text() == ACCENTED_PATH
    marks = first.locator(".passage mark").all_inner_texts()
    assert marks == ["équipe", "révision", "dépôt", "Genève"]


def test_refused_key_and_no_results_states(page, server: dict) -> None:
    page.goto(server["url"] + "/")
    page.evaluate("sessionStorage.setItem('pks.apiKey', 'pks_000000000000_revoked')")
    page.get_by_label("Search for").fill("electrolyte")
    page.keyboard.press("Enter")
    page.locator("#key-form").wait_for()
    assert "Key refused" in page.locator("#status").inner_text()
    page.get_by_label("Your API key").fill(server["keys"]["gamma"])
    page.keyboard.press("Enter")
    page.locator("#result-list li").first.wait_for()
    page.locator("#options summary").click()
    page.get_by_label("Only in folders").fill("alpha/")  # gamma may see nothing there
    page.get_by_label("Search for").fill("electrolyte")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text(re.compile(r"^No results for"))
    assert page.locator("#result-list li").count() == 0
    page.get_by_label("Only in folders").fill("/etc/*")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_class("error")
    expect(page.locator("#status")).to_contain_text("relative to the corpus root")


def test_admin_sees_which_partners_may_see_each_result(page, server: dict) -> None:
    sign_in_and_search(page, server, "admin", "cell and sensor integration swelling HERON")
    rights = page.locator(".result .rights").all_inner_texts()
    assert rights and all(r.startswith("Visible to: ") for r in rights)
    assert "Visible to: alpha, beta" in rights


def test_mode_switch_follows_what_the_api_offers(page, server: dict) -> None:
    spec = httpx.get(server["url"] + "/openapi.json").json()
    offered = "mode" in spec["components"]["schemas"]["SearchRequest"]["properties"]
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(r.post_data_json)
            if r.url.endswith("/v1/search") else None)
    sign_in_and_search(page, server, "alpha", "electrolyte")
    assert page.eval_on_selector("#modes", "e => e.hidden") is not offered
    assert all(("mode" in body) is offered for body in sent)


def test_usable_at_phone_width(browser, server: dict, tmp_path: Path) -> None:
    width = PHONE["viewport"]["width"]
    with loopback_tab(browser, **PHONE) as page:
        sign_in_and_search(page, server, "alpha", "ionic conductivity of the KESTREL electrolyte")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = page.locator("#q").bounding_box()
        assert box and box["width"] > width * 0.8
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_docs_render_offline(page, server: dict) -> None:
    page.goto(server["url"] + "/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(timeout=30_000)
    assert "Partner knowledge search" in title.inner_text()
    page.locator(".opblock-summary-path", has_text="/v1/search").first.wait_for()
    assert httpx.get(server["url"] + "/redoc").status_code == 404  # off: it needs a CDN logo


def test_readme_screenshot(page, server: dict, tmp_path: Path) -> None:
    """Screenshot of the page; with PKS_UPDATE_SCREENSHOT=1 it also refreshes docs/screenshot.png
    (shown in the README), so an ordinary run never rewrites a tracked file."""
    page.set_viewport_size({"width": 900, "height": 760})
    sign_in_and_search(page, server, "admin", "How did the sensors inside the pouch cells "
                                              "detect swelling?")
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("PKS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
