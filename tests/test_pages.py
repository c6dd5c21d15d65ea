"""The owners' page (/owned) and the admins' Builds page (/builds) in a real browser (Playwright
driving Debian's Chromium) against a real server on loopback: an owner sees its receipts and
their timeline, a partner owning nothing an empty friendly page, nobody another owner's
receipts; the admin reads each build's report and rolls back; at phone width and by keyboard.

Screenshots go to each test's tmp_path; PKS_UPDATE_SCREENSHOT=1 refreshes the README's
docs/owned.png and docs/builds.png.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from indexer.store.layout import CURRENT
from indexer.store.reader import Generation
from indexer.store.runs import RUNNING
from search_api.audit import files
from search_api.audit.files import AuditLog
from search_api.identity.keys import KeyStore
from search_api.identity.principal import Principal
from tests.browser import PHONE, loopback_tab
from tests.deployment import BROKEN_PDF, NEW_DOC, OWNED_BY, create_key, make_build_history, serve

pytestmark = pytest.mark.slow  # a real server and a browser

ROOT = Path(__file__).resolve().parents[1]
PARTNERS = ("alpha", "beta", "gamma", "delta")
OWNS = {**OWNED_BY, "alpha": OWNED_BY["alpha"] | {NEW_DOC}}
SEEDED = "seeded question about the KESTREL anneal that no owner may read"
TODAY_QUERY = "steering committee meetings in Rotterdam every quarter"
# What each partner may receive of the owned documents (tests/deployment.OWNED_MANIFEST).
RECEIVES = {"alpha": sorted(OWNS["delta"] | OWNS["alpha"] | OWNS["beta"]),
            "beta": sorted(OWNS["delta"] | OWNS["beta"]), "gamma": sorted(OWNS["delta"])}


def seed_history(index: Path, days: int = 28) -> None:
    """Four weeks of earlier receipts, written by the audit itself (as the server writes them),
    each stamped with its own past time."""
    generation = Generation.open_live(index)
    log = AuditLog(index, KeyStore(index))
    rng = random.Random(17)
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with pytest.MonkeyPatch.context() as patch:
        for back in range(days, 0, -1):
            for partner, docs in RECEIVES.items():
                for _ in range(rng.randint(0, 3)):
                    moment = noon - timedelta(days=back, minutes=rng.randint(0, 600))
                    patch.setattr(files, "utc_now", lambda moment=moment: moment)
                    log.record(Principal(f"seed{partner}", partner, False), "search",
                               generation=generation, query=SEEDED, mode="hybrid",
                               doc_ids=rng.sample(docs, k=rng.randint(1, 2)))
    log.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The build history (two generations, the newest with a skipped PDF, then a failed run),
    four weeks of audit, one key per partner and an admin key, served on loopback."""
    base = tmp_path_factory.mktemp("pages")
    _, index = make_build_history(base)
    keys = {p: create_key(index, p, f"{p} page key") for p in PARTNERS}
    keys["admin"] = create_key(index, None, "page admin")
    seed_history(index)
    with serve(index, {"PKS_RELOAD_SECONDS": "0"}) as url:
        for who in ("alpha", "beta", "gamma", "admin"):  # today's receipts, over HTTP
            answer = httpx.post(f"{url}/v1/search", json={"query": TODAY_QUERY, "top_k": 5},
                                headers={"Authorization": f"Bearer {keys[who]}"}, timeout=60)
            assert answer.status_code == 200, answer.text
        yield {"url": url, "keys": keys, "index": index}


def open_as(page: Any, site: dict, who: str | None, path: str) -> None:
    """Open `path` with `who`'s key already kept in the tab (as after signing in once)."""
    page.goto(site["url"] + "/")
    if who is not None:
        page.evaluate(f"sessionStorage.setItem('pks.apiKey', '{site['keys'][who]}')")
    page.goto(site["url"] + path)


def shown_rows(page: Any) -> list[dict[str, str]]:
    page.locator("#receipts tbody tr").first.wait_for()
    rows = []
    for tr in page.locator("#receipts tbody tr").all():
        cells = tr.locator("td").all()
        rows.append({c.get_attribute("data-label"): c.inner_text() for c in cells})
    return rows


def live(site: dict) -> str:
    return (site["index"] / CURRENT).read_text().strip()


def update_docs(shot: Path, name: str) -> None:
    if os.environ.get("PKS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / name)


# ---- the owners' page -------------------------------------------------------------------------

def test_search_page_links_to_the_pages_a_key_may_open(page: Any, site: dict) -> None:
    for who, owned, builds in (("delta", "Your documents", False), ("gamma", None, False),
                               ("admin", "Documents of all owners", True)):
        open_as(page, site, who, "/")
        expect(page.locator("#nav")).to_be_visible()
        link = page.locator("#nav-owned")
        if owned:
            expect(link).to_have_text(owned)
        else:
            expect(link).to_be_hidden()
        expect(page.locator("#nav-builds")).to_be_visible() if builds else \
            expect(page.locator("#nav-builds")).to_be_hidden()


def test_an_owner_sees_its_receipts_and_their_timeline(page: Any, site: dict,
                                                       tmp_path: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1000, "height": 900})
    open_as(page, site, "delta", "/owned")
    rows = shown_rows(page)
    assert {r["Document"] for r in rows} <= OWNS["delta"]
    assert {"alpha", "beta", "gamma", "admin"} <= {r["Received by"] for r in rows}
    assert all(r["First"] <= r["Last"] and r["Last"].endswith("UTC") for r in rows)
    bars = page.locator("#chart svg rect.bar")
    assert bars.count() >= 20  # four weeks of days with receipts, and today
    today = datetime.now(UTC).date().isoformat()
    assert bars.last.get_attribute("data-day") == today
    per_day = sum(int(b.get_attribute("data-count") or 0) for b in bars.all())
    assert per_day == sum(int(r["Times"]) for r in rows)  # the chart counts what the table does
    label = page.locator("#chart svg").get_attribute("aria-label") or ""
    assert label.startswith("Receipts per day") and today in label
    expect(page.locator("#status")).to_contain_text("received")
    text = page.locator("body").inner_text()
    assert SEEDED not in text and TODAY_QUERY not in text and "page key" not in text
    assert not any("/v1/admin/" in url for url in requests)
    shot = tmp_path / "owned.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    update_docs(shot, "owned.png")


def test_filters_narrow_the_rows_and_the_csv_holds_what_is_shown(page: Any, site: dict) -> None:
    open_as(page, site, "delta", "/owned")
    everything = shown_rows(page)
    page.get_by_label("Received by").select_option("gamma")
    expect(page.locator("#receipts tbody tr").first).to_be_visible()
    rows = shown_rows(page)
    assert rows and {r["Received by"] for r in rows} == {"gamma"} and len(rows) < len(everything)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(t["document"], t["received_by"], t["times"]) for t in table] == [
        (r["Document"], r["Received by"], r["Times"]) for r in rows]
    assert "owner" not in table[0] and SEEDED not in str(table)
    # A period before every receipt: the page says so instead of an empty table.
    page.get_by_label("To", exact=True).fill("2001-01-31")
    page.get_by_label("To", exact=True).dispatch_event("change")
    expect(page.locator("#status")).to_have_text(
        "No partner has received passages of your 3 documents in this period.")
    expect(page.locator("#receipts-section")).to_be_hidden()


def test_a_partner_owning_nothing_sees_an_empty_friendly_page(page: Any, site: dict,
                                                              tmp_path: Path) -> None:
    open_as(page, site, "gamma", "/owned")
    status = page.locator("#status")
    expect(status).to_contain_text("gamma owns no documents in this index")
    expect(status).to_have_class("empty")
    assert "ask the service's administrators" in status.inner_text()
    for hidden in ("#filters", "#timeline", "#receipts-section"):
        expect(page.locator(hidden)).to_be_hidden()
    page.screenshot(path=str(tmp_path / "owned-empty.png"), full_page=True)


def test_a_partner_never_sees_another_owners_receipts(page: Any, site: dict) -> None:
    open_as(page, site, "alpha", "/owned")
    rows = shown_rows(page)
    assert {r["Document"] for r in rows} <= OWNS["alpha"]
    text = page.locator("body").inner_text()
    for other in OWNS["delta"] | OWNS["beta"]:
        assert other not in text
    options = page.locator("#document option").all_inner_texts()
    assert set(options) - {"All documents"} <= OWNS["alpha"]
    # The admins' view is refused to a partner key, whatever the page would ask.
    refused = httpx.get(site["url"] + "/v1/admin/audit/owned",
                        headers={"Authorization": f"Bearer {site['keys']['alpha']}"})
    assert refused.status_code == 403


def test_the_admin_sees_every_owner(page: Any, site: dict) -> None:
    open_as(page, site, "admin", "/owned")
    expect(page.locator("h1")).to_have_text("Documents of all owners")
    rows = shown_rows(page)
    assert {r["Owner"] for r in rows} == {"alpha", "beta", "delta"}
    page.get_by_label("Owner").select_option("beta")
    expect(page.locator("#receipts tbody tr td[data-label=Owner]").first).to_have_text("beta")
    assert {r["Owner"] for r in shown_rows(page)} == {"beta"}


def test_owners_page_by_keyboard(page: Any, site: dict) -> None:
    open_as(page, site, "delta", "/owned")
    shown_rows(page)
    focused = []
    for _ in range(12):  # Tab from the top reaches every filter, then the CSV button
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || "
                                     "document.activeElement.textContent"))
        if focused[-1] == "partner":
            break
    assert focused[-1] == "partner" and "document" in focused
    page.keyboard.press("ArrowDown")  # the first partner in the list, chosen by keyboard
    chosen = page.locator("#partner").input_value()
    assert chosen and {r["Received by"] for r in shown_rows(page)} == {chosen}
    for _ in range(12):  # past the two dates (a Tab stop for each of their fields)
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "csv":
            break
    assert page.evaluate("document.activeElement.id") == "csv"
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename.startswith("receipts-delta-")


# ---- the Builds page --------------------------------------------------------------------------

def test_builds_page_shows_each_report_and_the_failed_night(page: Any, site: dict,
                                                            tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1000, "height": 900})
    open_as(page, site, "admin", "/builds")
    cards = page.locator("#generations li.card")
    expect(cards).to_have_count(2)
    newest, older = cards.all()
    assert "Live" in newest.locator(".badge").inner_text() and live(site) in newest.inner_text()
    figures = newest.locator(".figures").inner_text()
    assert "added 1" in figures and "1 skipped" in figures and "embedded" in figures
    newest.locator("summary", has_text="skipped").click()
    expect(newest.locator("li", has_text=BROKEN_PDF)).to_contain_text("PDF")
    assert older.locator("button.make-live").count() == 1
    assert newest.locator("button.make-live").count() == 0
    banner = page.locator("#last-run")
    expect(banner).to_have_class(re.compile(r"\bbad\b"))
    expect(banner).to_contain_text("exit code 2")
    expect(banner).to_contain_text("does not exist")
    exits = page.locator("#runs tbody td[data-label=Exit]").all_inner_texts()
    assert exits == ["2", "3", "0"]
    shot = tmp_path / "builds.png"
    page.screenshot(path=str(shot), full_page=True)
    update_docs(shot, "builds.png")


def test_a_build_killed_last_night_shows_at_once_as_interrupted(page: Any, site: dict) -> None:
    """A SIGKILLed build records nothing itself; its marker, whose process is gone, is shown
    as the newest run before any other build runs."""
    marker = site["index"] / RUNNING
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a PID with no process behind it, as a killed build's
    marker.write_text(json.dumps({"started_at": "2026-11-30T02:30:00+00:00", "pid": child.pid,
                                  "host": socket.gethostname()}))
    try:
        open_as(page, site, "admin", "/builds")
        banner = page.locator("#last-run")
        expect(banner).to_have_class(re.compile(r"\bbad\b"))
        expect(banner).to_contain_text("exit code 137 (interrupted")
        exits = page.locator("#runs tbody td[data-label=Exit]").all_inner_texts()
        assert exits == ["137", "2", "3", "0"]
    finally:
        marker.unlink()


def test_a_partner_key_is_asked_for_an_admin_key(page: Any, site: dict) -> None:
    open_as(page, site, "delta", "/builds")
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("needs an admin key")
    expect(page.locator("#generations-section")).to_be_hidden()
    page.get_by_label("An admin API key").fill(site["keys"]["admin"])
    page.keyboard.press("Enter")
    expect(page.locator("#generations li.card")).to_have_count(2)


def test_the_admins_rollback_switches_the_live_generation(page: Any, site: dict) -> None:
    newest = live(site)
    open_as(page, site, "admin", "/builds")
    older_card = page.locator("#generations li.card").nth(1)
    older = older_card.locator(".name").inner_text()
    older_card.get_by_role("button", name=f"Make generation {older} live").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"rollback --to {older}")
    dialog.get_by_role("button", name="Make it live").click()
    expect(page.locator("#status")).to_have_text(f"Generation {older} is live now (was {newest}).")
    assert live(site) == older
    assert httpx.get(site["url"] + "/healthz").json()["generation"] == older
    expect(page.locator("#generations li.card.live .name")).to_have_text(older)
    events = httpx.get(site["url"] + "/v1/admin/audit", params={"partner": "admin", "limit": 1},
                       headers={"Authorization": f"Bearer {site['keys']['admin']}"}).json()
    assert (events["events"][0]["surface"], events["events"][0]["query"]) == (
        "rollback", f"{newest} -> {older}")
    # And back, by keyboard: Escape cancels, Enter on "Make it live" confirms.
    back = page.get_by_role("button", name=f"Make generation {newest} live")
    back.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.generation") == newest
    assert live(site) == older  # cancelled: nothing changed
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"  # the safe default
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text(f"Generation {newest} is live now")
    assert live(site) == newest


# ---- phone width ------------------------------------------------------------------------------

@pytest.mark.parametrize("who, path, ready", [
    ("delta", "/owned", "#receipts tbody tr"), ("admin", "/owned", "#receipts tbody tr"),
    ("gamma", "/owned", "#status.empty"), ("admin", "/builds", "#generations li.card")])
def test_each_page_fits_a_phone(browser: Any, site: dict, tmp_path: Path, who: str, path: str,
                                ready: str) -> None:
    width = PHONE["viewport"]["width"]
    with loopback_tab(browser, **PHONE) as phone:
        open_as(phone, site, who, path)
        phone.locator(ready).first.wait_for()
        assert phone.evaluate("document.documentElement.scrollWidth") <= width
        if path == "/owned" and who != "gamma":
            box = phone.locator("#chart svg").bounding_box()
            assert box and box["width"] <= width and box["width"] > width * 0.8
            first = phone.locator("#receipts tbody tr").first.bounding_box()
            assert first and first["width"] <= width  # a row is a card, not a wide table row
        phone.screenshot(path=str(tmp_path / f"phone-{who}{path.replace('/', '-')}.png"),
                         full_page=True)
