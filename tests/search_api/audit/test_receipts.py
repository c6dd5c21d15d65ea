"""The owners' receipts kept as the audit is written give exactly what the records give, in the
file audit and in PostgreSQL, for every period (whole days, or starting and ending inside one);
they catch up with records they missed; retention exports, then removes, old records and their
receipts."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from indexer.build import BuildReport
from indexer.store.reader import Generation
from search_api.audit.files import ACTIVE, AuditLog
from search_api.audit.owned import owned_receipts, owned_view
from search_api.audit.trail import AuditQuery, iso
from search_api.identity.keys import KeyStore
from search_api.identity.principal import Principal

PARTNERS = ("alpha", "beta", "gamma", "delta")
# Documents with the owner recorded with their accesses: some no longer indexed (their recorded
# owner counts), some indexed with no owner today (they count for nobody).
DOCS = [("gone/a.txt", "alpha"), ("gone/b.txt", "alpha"), ("gone/c.txt", "beta"),
        ("alpha/electrolyte.txt", "alpha"), ("shared/overview.md", None)]
START = datetime(2026, 11, 18, 6, tzinfo=UTC)


def events(n: int = 300, seed: int = 5) -> list[dict[str, Any]]:
    """Records over six days, in time order, of every surface and outcome."""
    rng = random.Random(seed)
    moments = sorted(START + timedelta(seconds=rng.randrange(6 * 86400)) for _ in range(n))
    out = []
    for moment in moments:
        docs = rng.sample(DOCS, rng.randint(0, 3))
        admin = rng.random() < 0.15
        out.append({
            "time": iso(moment), "key_id": "k", "key_name": "n",
            "partner": None if admin else rng.choice(PARTNERS), "admin": admin,
            "on_behalf_of": rng.choice([None, None, "delta"]),
            "surface": rng.choice(["search", "retrieve", "mcp", "document", "mcp-document"]),
            "query": "q", "mode": None, "status": rng.choice([200, 200, 200, 404]),
            "generation": "g", "dense_plan": None,
            "documents": [{"doc_id": d, "owner": o, "passages": 1} for d, o in docs]})
    return out


def write_segments(directory: Path, records: list[dict[str, Any]]) -> None:
    """The records as a file audit of an earlier version left them: a segment per day, the
    last one open (written straight to the files: no receipts were kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    days = sorted({r["time"][:10] for r in records})
    for number, day in enumerate(days, start=1):
        name = ACTIVE if day == days[-1] else f"segment-{number:06d}.jsonl"
        with open(directory / name, "w") as out:
            out.writelines(json.dumps(r) + "\n" for r in records if r["time"][:10] == day)


QUERIES = [AuditQuery(),
           AuditQuery(since=datetime(2026, 11, 19, tzinfo=UTC),
                      until=datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=UTC)),
           AuditQuery(since=datetime(2026, 11, 19, 13, 30, tzinfo=UTC)),
           AuditQuery(until=datetime(2026, 11, 21, 8, 15, tzinfo=UTC)),
           AuditQuery(since=datetime(2026, 11, 20, 1, tzinfo=UTC),
                      until=datetime(2026, 11, 22, 20, tzinfo=UTC)),
           AuditQuery(since=datetime(2026, 11, 20, 9, tzinfo=UTC),
                      until=datetime(2026, 11, 20, 17, tzinfo=UTC)),
           AuditQuery(since=datetime(2026, 11, 20, tzinfo=UTC),
                      until=datetime(2026, 11, 20, 17, tzinfo=UTC)),
           AuditQuery(partner="delta"), AuditQuery(document="gone/a.txt"),
           AuditQuery(partner="admin", since=datetime(2026, 11, 19, 23, tzinfo=UTC))]
OWNERS = [frozenset({"alpha"}), frozenset({"beta"}), frozenset({"alpha", "beta", "gamma"})]


def assert_same_as_the_records(audit: Any, generation: Generation) -> None:
    records = list(audit.events())
    for query in QUERIES:
        for owners in OWNERS:
            assert owned_view(audit, owners, generation, query) == \
                owned_receipts(records, owners, generation, query), (query, owners)
    assert owned_view(audit, OWNERS[0], generation)  # there is something to compare


@pytest.fixture()
def generation(access_index: tuple[Path, BuildReport]) -> Generation:
    return Generation.open_live(access_index[0])


def test_the_files_receipts_equal_the_records_and_catch_up(tmp_path: Path,
                                                             generation: Generation) -> None:
    records = events()
    write_segments(tmp_path / "audit", records)
    audit = AuditLog(tmp_path, KeyStore(tmp_path))  # an audit from before receipts were kept
    assert_same_as_the_records(audit, generation)
    for _ in range(2):
        with open(tmp_path / "audit" / ACTIVE, "a") as out:  # a writer killed before counting
            late = {**records[-1], "time": iso(datetime(2026, 11, 23, 23, tzinfo=UTC))}
            out.write(json.dumps(late) + "\n")
        # today's record starts a new segment (a new UTC day), counting the one before it
        audit.record(Principal("k", "beta", False), "search", generation=generation,
                     query="q", doc_ids=["alpha/electrolyte.txt", "shared/overview.md"])
        assert_same_as_the_records(audit, generation)
    assert len(audit.segments()) == len({r["time"][:10] for r in records}) + 1
    (tmp_path / "audit" / "receipts.sqlite").unlink()  # lost: rebuilt from the records
    audit.close()
    assert_same_as_the_records(AuditLog(tmp_path, KeyStore(tmp_path)), generation)


def test_retention_exports_then_removes_whole_days_with_their_receipts(
        tmp_path: Path, generation: Generation) -> None:
    records = events()
    write_segments(tmp_path / "audit", records)
    audit = AuditLog(tmp_path, KeyStore(tmp_path))
    assert_same_as_the_records(audit, generation)
    pruned = audit.prune(date(2026, 11, 21), tmp_path / "export")
    old = [r for r in records if r["time"] < "2026-11-21"]
    assert pruned.records == len(old) and pruned.before == "2026-11-21"
    exported = [json.loads(line) for name in pruned.files
                for line in gzip.open(name, "rt").read().splitlines()]
    assert sorted(exported, key=lambda r: r["time"]) == old
    assert [e["time"] for e in audit.events()] == [r["time"] for r in records
                                                   if r["time"] >= "2026-11-21"]
    assert_same_as_the_records(audit, generation)
    assert audit.prune(date(2026, 11, 21), tmp_path / "export").records == 0


@pytest.mark.slow  # starts a PostgreSQL server
def test_postgresqls_receipts_equal_the_records_and_the_files(
        tmp_path: Path, generation: Generation, database_url: str) -> None:
    from search_api.state.postgres.audit import PostgresAudit
    from search_api.state.postgres.database import Database
    from search_api.state.postgres.keys import PostgresKeys
    from search_api.state.postgres.transfer import move_local

    records = events()
    write_segments(tmp_path / "audit", records)
    files = AuditLog(tmp_path, KeyStore(tmp_path))
    db = Database(database_url, 2).open()
    try:
        keys = PostgresKeys(db)
        audit = PostgresAudit(db, keys)
        moved = move_local(tmp_path, keys, audit)  # as `db import` moves a file audit in
        assert moved.records == len(records)
        assert_same_as_the_records(audit, generation)
        for query in QUERIES:
            assert owned_view(audit, OWNERS[2], generation, query) == \
                owned_view(files, OWNERS[2], generation, query)
        pruned = audit.prune(date(2026, 11, 21), tmp_path / "pg-export")
        old = [r for r in records if r["time"] < "2026-11-21"]
        assert pruned.records == len(old)
        [name] = pruned.files
        assert [json.loads(line) for line in gzip.open(name, "rt").read().splitlines()] == old
        assert_same_as_the_records(audit, generation)
    finally:
        db.close()


@pytest.mark.slow  # starts a PostgreSQL server
def test_the_backlog_of_a_database_from_before_receipts_is_counted_once(
        tmp_path: Path, generation: Generation, database_url: str) -> None:
    from search_api.state.postgres.audit import PostgresAudit, row_values
    from search_api.state.postgres.database import Database
    from search_api.state.postgres.keys import PostgresKeys

    records = events(120, seed=9)
    db = Database(database_url, 2).open()
    try:
        with db.connection() as conn:
            for record in records:
                conn.execute("INSERT INTO pks_audit (time, who, doc_ids, status, event) VALUES "
                             "(%s, %s, %s, %s, %s)", (record["time"], *row_values(record)))
            conn.execute("UPDATE pks_receipts_backlog SET upto = (SELECT max(id) FROM pks_audit)")
        audit = PostgresAudit(db, PostgresKeys(db))
        assert audit.fill_backlog() == len(records)
        assert audit.fill_backlog() == 0  # done: never counted twice
        assert_same_as_the_records(audit, generation)
    finally:
        db.close()
