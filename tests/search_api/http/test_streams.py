"""No partner can starve another: event streams (GET /mcp) bounded per key and per server and
closed when idle, and a key that holds all the streams it may while looping on the owned view
leaves another partner's searches whole."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from indexer.build import BuildReport
from search_api.access.budgets import StreamSlots
from search_api.identity.keys import KeyStore
from search_api.retrieval.live import IndexHolder
from tests.deployment import app_client
from tests.search_api.conftest import Clock, auth

STREAM = {"Accept": "text/event-stream"}
SEARCH = {"query": "sulfide electrolyte conductivity", "top_k": 5}


def test_slots_are_bounded_per_key_and_per_server() -> None:
    slots = StreamSlots(2, 3)
    slots.open("a")
    slots.open("a")
    for whose, key in (("this key", "a"), ("this server", "b")):
        if whose == "this server":
            slots.open("b")
        try:
            slots.open(key)
        except Exception as exc:  # noqa: BLE001 - the refusal's shape is the point
            assert getattr(exc, "status", None) == 429 and whose in str(exc)
        else:
            raise AssertionError(f"a stream over the limit of {whose} was let through")
    slots.close("a")
    slots.open("b")
    assert (slots.held("a"), slots.held("b"), slots.held()) == (1, 2, 3)


def test_an_idle_stream_is_closed_and_its_slot_given_back(
        access_index: tuple[Path, BuildReport], holder: IndexHolder, clock: Clock,
        keys: dict[str, str]) -> None:
    with app_client(access_index[0], holder=holder, today=clock,
                    stream_idle_seconds=0.5, streams_per_key=2) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        response = client.get("/mcp", headers={**STREAM, **auth(keys["alpha"])})
        assert response.status_code == 200  # it ended: nothing but pings for 0.5 s
        assert services.streams.held() == 0
        key_id = keys["alpha"].split("_")[1]
        services.streams.open(key_id)
        services.streams.open(key_id)  # as if two streams were open: the third is refused
        refused = client.get("/mcp", headers={**STREAM, **auth(keys["alpha"])})
        assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()
        assert refused.json()["error"]["code"] == "too_many_streams"
        other = client.get("/mcp", headers={**STREAM, **auth(keys["beta"])})
        assert other.status_code == 200  # another key's own slots


@pytest.mark.slow  # a real server
def test_one_key_holding_64_streams_and_looping_starves_no_other_partner(
        owned_server: dict) -> None:
    """Alpha's key holds every stream it may (the 65th is 429) and reads its receipts in a
    loop; beta's searches all succeed, their median within twice that of the idle server,
    measured in alternating rounds (idle, loaded) so that the machine's own load hits both."""
    url = owned_server["url"]
    store = KeyStore(owned_server["index"])
    hog, beta = (store.create(f"streams {p}", p, False)[1] for p in ("alpha", "beta"))
    loading, stop = threading.Event(), threading.Event()
    looped: Counter[int] = Counter()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=60, headers=auth(hog)) as client:
            while not stop.is_set():
                if loading.wait(0.05):
                    looped[client.get("/v1/audit/owned").status_code] += 1

    with ExitStack() as held, httpx.Client(base_url=url, timeout=60) as searcher:
        for _ in range(64):
            client = held.enter_context(httpx.Client(base_url=url, timeout=60))
            stream = held.enter_context(client.stream("GET", "/mcp",
                                                      headers={**STREAM, **auth(hog)}))
            assert stream.status_code == 200
        over = httpx.get(f"{url}/mcp", headers={**STREAM, **auth(hog)}, timeout=60)
        assert over.status_code == 429 and over.json()["error"]["code"] == "too_many_streams"
        looper = threading.Thread(target=loop, daemon=True)
        looper.start()
        times: dict[bool, list[float]] = {False: [], True: []}
        statuses: Counter[int] = Counter()
        try:
            for _ in range(10):
                for loaded in (False, True):
                    (loading.set if loaded else loading.clear)()
                    time.sleep(0.2)
                    for _ in range(8):
                        started = time.perf_counter()
                        response = searcher.post("/v1/search", json=SEARCH, headers=auth(beta))
                        times[loaded].append(time.perf_counter() - started)
                        statuses[response.status_code] += 1
        finally:
            stop.set()
            looper.join(timeout=60)
    assert statuses == {200: 160}
    assert looped[200] > 0  # the loop did run against the server
    idle, busy = statistics.median(times[False]), statistics.median(times[True])
    print(f"beta p50 idle {idle * 1000:.1f} ms, loaded {busy * 1000:.1f} ms; loop {dict(looped)}")
    assert busy <= 2 * idle, f"p50 {busy * 1000:.1f} ms loaded vs {idle * 1000:.1f} ms idle"
    deadline = time.monotonic() + 30  # the slots come back as the server sees them closed
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            with client.stream("GET", "/mcp", headers={**STREAM, **auth(hog)}) as again:
                status = again.status_code
            if status != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert status == 200


def test_refusal_is_charged_like_any_request(
        access_index: tuple[Path, BuildReport], holder: IndexHolder, clock: Clock,
        keys: dict[str, str]) -> None:
    """A stream counts against its key's request budget when it is opened, as any request."""
    with app_client(access_index[0], holder=holder, today=clock, rate_limit_per_minute=1,
                    rate_limit_burst=1, stream_idle_seconds=0.2) as client:
        assert client.get("/mcp", headers={**STREAM, **auth(keys["gamma"])}).status_code == 200
        limited = client.get("/mcp", headers={**STREAM, **auth(keys["gamma"])})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
