"""The audit log on real files: append-only JSON lines, rotation without loss, concurrent writers
(threads and processes), a failing disk that refuses the request rather than lose its record,
any Unicode recorded as given, filters, and the owners' reduction of it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from indexer.build import BuildReport
from indexer.store.reader import Generation
from search_api.audit.files import ACTIVE, AuditLog
from search_api.audit.owned import every_owner, owned_receipts
from search_api.audit.trail import AuditQuery, AuditUnavailable
from search_api.identity.keys import KeyStore
from search_api.identity.principal import Principal
from search_api.ops.metrics import OpsMetrics

ROOT = Path(__file__).resolve().parents[3]
ALPHA = Principal("a1", "alpha", False)
BETA = Principal("b1", "beta", False)
ADMIN = Principal("ad", None, True)


def all_queries(log: AuditLog) -> list[str]:
    return [e["query"] for e in log.events()]


def test_records_are_json_lines_with_who_what_and_owners(
        tmp_path: Path, access_index: tuple[Path, BuildReport]) -> None:
    generation = Generation.open_live(access_index[0])
    log = AuditLog(tmp_path, KeyStore(tmp_path))
    log.record(ALPHA, "search", generation=generation, query="kestrel",
               doc_ids=["alpha/electrolyte.txt", "shared/overview.md", "alpha/electrolyte.txt"],
               mode="dense", on_behalf_of="beta")
    [line] = (tmp_path / "audit" / ACTIVE).read_text().splitlines()
    event = json.loads(line)
    assert event["key_id"] == "a1" and event["partner"] == "alpha" and not event["admin"]
    assert event["on_behalf_of"] == "beta" and event["surface"] == "search"
    assert event["query"] == "kestrel" and event["mode"] == "dense" and event["status"] == 200
    assert event["generation"] == generation.name
    assert event["documents"] == [
        {"doc_id": "alpha/electrolyte.txt", "owner": None, "passages": 2},
        {"doc_id": "shared/overview.md", "owner": None, "passages": 1}]
    assert event["time"].endswith("Z")
    assert stat.S_IMODE(os.stat(tmp_path / "audit" / ACTIVE).st_mode) == 0o600


def test_size_rotation_from_many_threads_loses_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, KeyStore(tmp_path), max_bytes=2048, fsync_seconds=0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.record(ALPHA, "search", generation=None, query=f"q{i}",
                                           doc_ids=[f"d{i}"]), range(400)))
    segments = log.segments()
    assert len(segments) > 5 and segments[-1].name == ACTIVE
    assert [p.name for p in segments[:2]] == ["segment-000001.jsonl", "segment-000002.jsonl"]
    assert sorted(all_queries(log)) == sorted(f"q{i}" for i in range(400))
    times = [e["time"] for e in log.events()]
    assert times == sorted(times)  # the files' order is the order of the times
    for path in segments:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        if path.name != ACTIVE:  # a closed segment reached the size that closed it
            assert 2048 - 400 <= path.stat().st_size <= 2048 + 400
    assert log.failures == 0


def test_age_rotation_and_a_restart_keep_every_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, KeyStore(tmp_path), max_age_seconds=0.2)
    log.record(ALPHA, "search", generation=None, query="first", doc_ids=[])
    log.close()
    # the age is read from the file itself
    restarted = AuditLog(tmp_path, KeyStore(tmp_path), max_age_seconds=0.2)
    time.sleep(0.3)
    restarted.record(BETA, "retrieve", generation=None, query="second", doc_ids=[])
    assert [p.name for p in restarted.segments()] == ["segment-000001.jsonl", ACTIVE]
    assert all_queries(AuditLog(tmp_path, KeyStore(tmp_path))) == ["first", "second"]


WRITER = """
import sys
from pathlib import Path
from search_api.identity.principal import Principal
from search_api.audit.files import AuditLog
from search_api.identity.keys import KeyStore
log = AuditLog(Path(sys.argv[1]), KeyStore(Path(sys.argv[1])), max_bytes=4096, fsync_seconds=0)
for i in range(150):
    log.record(Principal(sys.argv[2], "alpha", False), "mcp", generation=None,
               query=f"{sys.argv[2]}-{i}", doc_ids=[])
assert log.failures == 0
"""


def test_writers_in_several_processes_share_one_log(tmp_path: Path) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"p{n}"], cwd=ROOT)
               for n in range(3)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    log = AuditLog(tmp_path, KeyStore(tmp_path))
    expected = sorted(f"p{n}-{i}" for n in range(3) for i in range(150))
    assert sorted(all_queries(log)) == expected  # each exactly once, none torn
    assert len(log.segments()) > 3


def test_a_failing_disk_is_counted_and_raises_so_that_nothing_is_answered_unrecorded(
        tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("a file where the audit directory should be")
    metrics = OpsMetrics(lambda: None, tmp_path)
    log = AuditLog(tmp_path, KeyStore(tmp_path), observer=metrics)
    for surface in ("search", "document"):
        with pytest.raises(AuditUnavailable, match="cannot record this request"):
            log.record(ALPHA, surface, generation=None, query="lost", doc_ids=["d"])
    assert log.failures == 2
    assert metrics.registry.get_sample_value("pks_audit_write_failures_total") == 2
    assert metrics.registry.get_sample_value(  # refused, so not an access
        "pks_searches_total", {"surface": "document", "mode": "default"}) is None


@pytest.mark.parametrize("query", [
    "Café naïve coöperation", "東京の電池 研究", "שלום עולם", "e\u0301 combining", "😀 emoji",
    "\u0000 nul and \u001f controls", "\u2028 line separator", "\ud800 lone surrogate",
    "\udfff\ud800 reversed pair", "tab\tand\nnewline"])
def test_query_texts_of_any_unicode_are_recorded_faithfully(tmp_path: Path, query: str) -> None:
    """Read back exactly as given: what UTF-8 cannot encode is escaped, never dropped."""
    log = AuditLog(tmp_path, KeyStore(tmp_path))
    log.record(ALPHA, "search", generation=None, query=query, doc_ids=[query])
    [event] = log.events()
    assert event["query"] == query and event["documents"][0]["doc_id"] == query
    raw = (tmp_path / "audit" / ACTIVE).read_bytes()
    raw.decode("utf-8")  # the file stays valid UTF-8
    if query.isascii() or "\ud800" in query or "\udfff" in query:
        return
    assert query.split()[0].encode("utf-8") in raw  # readable as written, not \u-escaped


def test_a_torn_line_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, KeyStore(tmp_path))
    log.record(ALPHA, "search", generation=None, query="before", doc_ids=[])
    with open(tmp_path / "audit" / ACTIVE, "ab") as handle:
        handle.write(b'{"time": "2026-11-25T')  # a power cut in the middle of a record
    log.record(ALPHA, "search", generation=None, query="after", doc_ids=[])
    assert all_queries(log) == ["before", "after"]


def test_filters_newest_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, KeyStore(tmp_path))
    log.record(ALPHA, "search", generation=None, query="one", doc_ids=["x", "y"])
    log.record(BETA, "search", generation=None, query="two", doc_ids=["y"])
    log.record(ADMIN, "document", generation=None, query="x", doc_ids=["x"])
    log.record(BETA, "retrieve", generation=None, query="three", doc_ids=[], on_behalf_of="gamma")

    def queries(**filters: object) -> list[str]:
        return [e["query"] for e in log.newest_first(AuditQuery(**filters))]  # type: ignore[arg-type]

    assert queries() == ["three", "x", "two", "one"]
    assert queries(limit=2) == ["three", "x"]
    assert queries(partner="beta") == ["three", "two"]
    assert queries(partner="gamma") == ["three"]  # acted for
    assert queries(partner="admin") == ["x"]
    assert queries(document="x") == ["x", "one"]
    now = datetime.now(UTC)
    assert queries(since=now + timedelta(seconds=5)) == []
    assert queries(until=now - timedelta(days=1)) == []
    assert len(queries(since=now - timedelta(minutes=5), until=now + timedelta(minutes=5))) == 4


def event(doc: str, owner: str | None, partner: str | None = "beta", *, status: int = 200,
          surface: str = "search", on_behalf_of: str | None = None,
          time: str = "2026-11-25T10:00:00.000000Z") -> dict[str, object]:
    return {"time": time, "key_id": "k", "key_name": "n", "partner": partner,
            "admin": partner is None, "on_behalf_of": on_behalf_of, "surface": surface,
            "query": "q", "mode": None, "status": status, "generation": "g",
            "documents": [{"doc_id": doc, "owner": owner, "passages": 1}]}


def test_owners_see_receipts_of_what_they_own_by_the_live_generation(
        access_index: tuple[Path, BuildReport]) -> None:
    generation = Generation.open_live(access_index[0])  # this corpus names no owners
    events = [
        event("gone/old-report.txt", "alpha", time="2026-11-25T09:00:00.000000Z"),
        event("gone/old-report.txt", "alpha", time="2026-11-25T11:00:00.000000Z"),
        event("gone/old-report.txt", "alpha", surface="document", on_behalf_of="delta"),
        event("gone/old-report.txt", "alpha", None),
        event("gone/old-report.txt", "alpha", status=404, surface="document"),
        event("gone/other.txt", "gamma"),
        # recorded as alpha's, but the live generation says nobody owns it now
        event("alpha/electrolyte.txt", "alpha"),
    ]
    receipts = [(r.owner, r.doc_id, r.partner, r.kind, r.count, r.first[11:16], r.last[11:16])
                for r in owned_receipts(events, frozenset({"alpha"}), generation)]
    assert receipts == [
        ("alpha", "gone/old-report.txt", "admin", "passages", 1, "10:00", "10:00"),
        ("alpha", "gone/old-report.txt", "beta", "download", 1, "10:00", "10:00"),
        ("alpha", "gone/old-report.txt", "beta", "passages", 2, "09:00", "11:00"),
        ("alpha", "gone/old-report.txt", "delta", "download", 1, "10:00", "10:00"),
    ]
    assert owned_receipts(events, frozenset({"beta"}), generation) == []
    both = owned_receipts(events, frozenset({"alpha", "gamma"}), generation)
    assert {(r.owner, r.doc_id) for r in both} == {("alpha", "gone/old-report.txt"),
                                                   ("gamma", "gone/other.txt")}
    assert every_owner(events, generation) == {"alpha", "gamma"}  # recorded with accesses


def test_receipts_count_per_day_and_filter_by_period_document_and_partner(
        access_index: tuple[Path, BuildReport]) -> None:
    generation = Generation.open_live(access_index[0])
    times = ["2026-11-20T23:59:59.999999Z", "2026-11-21T00:00:00.000000Z",
             "2026-11-21T18:30:00.000000Z", "2026-11-23T08:00:00.000000Z"]
    events = [event("gone/a.txt", "alpha", time=t) for t in times]
    events += [event("gone/b.txt", "alpha", "gamma", time=times[1]),
               event("gone/a.txt", "alpha", "gamma", on_behalf_of="delta", time=times[3])]
    owner = frozenset({"alpha"})
    [beta_a, delta_a, gamma_a, gamma_b] = owned_receipts(events, owner, generation)
    assert (beta_a.doc_id, beta_a.partner, beta_a.count) == ("gone/a.txt", "beta", 4)
    assert beta_a.days == (("2026-11-20", 1), ("2026-11-21", 2), ("2026-11-23", 1))
    assert (delta_a.partner, gamma_a.partner, gamma_a.days) == ("delta", "gamma",
                                                                (("2026-11-23", 1),))
    assert gamma_b.doc_id == "gone/b.txt"

    def rows(**filters: object) -> list[tuple[str, str, int]]:
        found = owned_receipts(events, owner, generation, AuditQuery(**filters))  # type: ignore[arg-type]
        return [(r.doc_id, r.partner, r.count) for r in found]

    day = datetime(2026, 11, 21, tzinfo=UTC)
    assert rows(since=day, until=day + timedelta(days=1) - timedelta(microseconds=1)) == [
        ("gone/a.txt", "beta", 2), ("gone/b.txt", "gamma", 1)]
    assert rows(document="gone/b.txt") == [("gone/b.txt", "gamma", 1)]
    # acted for delta by a gamma key: the row of each recipient, never the other's
    assert rows(partner="delta") == [("gone/a.txt", "delta", 1)]
    assert rows(partner="gamma") == [("gone/a.txt", "gamma", 1), ("gone/b.txt", "gamma", 1)]
    assert rows(since=day + timedelta(days=30)) == []


@pytest.mark.parametrize("text", ["2026-11-25", "2026-11-25T10:00:00Z", "2026-11-25T10:00:00"])
def test_times_without_a_zone_are_utc(text: str) -> None:
    from search_api.audit.trail import parse_time

    assert parse_time(text).utcoffset() == timedelta(0)
