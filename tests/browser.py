"""The browser for the page tests: Debian's Chromium driven by Playwright, one per test module,
and tabs that can reach only the server on loopback (any other request is aborted and fails
the test: a page must never load anything from the internet)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.environment import CHROMIUM, require

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}


@contextmanager
def launched() -> Iterator[Any]:
    require(CHROMIUM.exists(), f"Debian's chromium ({CHROMIUM})", "apt-get install chromium "
            "(make test runs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def loopback_tab(browser: Any, **context: Any) -> Iterator[Any]:
    """A fresh tab (its own context: no key from another test) that reaches only loopback."""
    opened = browser.new_context(**context)
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    opened.route("**/*", only_loopback)
    tab = opened.new_page()
    try:
        yield tab
    finally:
        opened.close()
    assert outside == [], f"the page tried to reach the internet: {outside}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    with loopback_tab(browser) as tab:
        yield tab
