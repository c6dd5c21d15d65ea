"""What an owner's receipts (GET /v1/audit/owned) cost as the audit grows: the same call over
an audit of ten thousand and of a million records, on the real server.

    .venv/bin/python benchmarks/owned_receipts.py [--records 10000 1000000] [--calls 200] \
        [--database-url postgresql://...] [--json OUT]

The index is small and synthetic (200 documents, each owned by one of 50 partners, written
through the store's writer; the server embeds nothing here). The audit is written straight to
files as a server of this version writes it (one segment per UTC day, over 30 days), without
receipts; the receipts of those records are counted once before the server starts (timed: the
one-time cost of an upgrade; with PostgreSQL the import counts them), then each call reads
tallies, never the records. Owner p00 owns 4 documents, which 10 partners receive in the same
2,000 records at every audit size; the other 196 documents take the rest, so p00's answer is
the same at every size and only the audit grows. With
--database-url the records are moved into that (empty) PostgreSQL database as `db import` moves
them, and the server reads them there. The calls come one at a time over one keep-alive
connection, with the rate limit off; the JSON gives the latency's p50 and p95, the server's CPU
per call, the CPU model and the load average. The goal (issue 22): p50 <= 20 ms at a million.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, latency_summary, serving, write_results  # noqa: E402
from benchmarks.machine import cpu  # noqa: E402
from indexer.embed.embedder import model_reference  # noqa: E402
from indexer.settings import default_model  # noqa: E402
from indexer.store.records import Chunk, Grant, StoredDocument  # noqa: E402
from indexer.store.writer import GenerationWriter  # noqa: E402
from search_api.audit.files import ACTIVE
from search_api.audit.trail import iso  # noqa: E402

PARTNERS = tuple(f"p{i:02d}" for i in range(50))
DOCUMENTS = 200  # document d is owned by PARTNERS[d % 50]; p00 owns 4
DAYS = 30
OWNED = 2000  # records that deliver p00's documents, the same in every audit size
DIM = 384


def write_index(index: Path) -> None:
    rng = np.random.default_rng(3)
    writer = GenerationWriter(index, DIM, {"model": model_reference(default_model()),
                                           "dim": str(DIM)}, PARTNERS)
    for d in range(DOCUMENTS):
        owner = PARTNERS[d % len(PARTNERS)]
        writer.add_document(StoredDocument(f"doc-{d:03d}", f"docs/{d:03d}.md", f"Doc {d}",
                                           f"{d:064x}"),
                            Grant(1, frozenset(PARTNERS), None, owner))
        vector = rng.standard_normal((1, DIM)).astype(np.float32)
        writer.add_chunks([Chunk(1000 + d, f"doc-{d:03d}", 0, None, 0, 9, f"document {d}")],
                          vector / np.linalg.norm(vector))
    writer.publish({"documents": DOCUMENTS, "chunks": DOCUMENTS, "synthetic": True}, keep=1)


def write_audit(index: Path, records: int) -> None:
    """`records` search records over DAYS days ending yesterday, a segment per UTC day: the
    same OWNED of them (same seed) deliver one of p00's documents to one of 10 partners, the
    rest deliver the other owners' documents."""
    directory = index / "audit"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - \
        timedelta(days=DAYS)
    span = DAYS * 86400 * 10**6
    mine, theirs = np.random.default_rng(5), np.random.default_rng(11)
    owned = [d for d in range(DOCUMENTS) if d % len(PARTNERS) == 0]
    others = [d for d in range(DOCUMENTS) if d % len(PARTNERS) != 0]
    moments = np.concatenate([mine.integers(0, span, OWNED), theirs.integers(0, span,
                                                                            records - OWNED)])
    docs = np.concatenate([mine.choice(owned, OWNED), theirs.choice(others, records - OWNED)])
    partners = np.concatenate([mine.integers(0, 10, OWNED),
                               theirs.integers(0, len(PARTNERS), records - OWNED)])
    order = np.argsort(moments, kind="stable")
    day, out = None, None
    for number, at in enumerate(order.tolist()):
        moment = iso(start + timedelta(microseconds=int(moments[at])))
        if moment[:10] != day:
            if out is not None:
                out.close()
            day = moment[:10]
            out = open(directory / f"segment-{number + 1:09d}.jsonl", "w")  # noqa: SIM115
        doc, partner = int(docs[at]), PARTNERS[int(partners[at])]
        assert out is not None
        out.write(json.dumps({
            "time": moment, "key_id": f"k{partner}", "key_name": partner, "partner": partner,
            "admin": False, "on_behalf_of": None, "surface": "search", "query": "a question",
            "mode": "hybrid", "status": 200, "generation": "g", "dense_plan": "exact",
            "documents": [{"doc_id": f"doc-{doc:03d}", "owner": PARTNERS[doc % len(PARTNERS)],
                           "passages": 1}]}) + "\n")
    if out is not None:
        out.close()
    last = sorted(directory.glob("segment-*.jsonl"))[-1]
    last.rename(directory / ACTIVE)


def measure(index: Path, records: int, calls: int, database_url: str | None) -> dict[str, object]:
    from search_api.identity.keys import KeyStore

    write_audit(index, records)
    (index / "audit" / "receipts.sqlite").unlink(missing_ok=True)
    env = {"PKS_RATE_LIMIT_PER_MINUTE": "0"}
    started = time.perf_counter()
    if database_url:
        from search_api.state.postgres.audit import PostgresAudit
        from search_api.state.postgres.database import Database
        from search_api.state.postgres.keys import PostgresKeys
        from search_api.state.postgres.transfer import move_local

        db = Database(database_url, 2).open()
        with db.connection() as conn:
            conn.execute("TRUNCATE pks_audit, pks_receipts, pks_api_keys")
        keys = PostgresKeys(db)
        move_local(index, keys, PostgresAudit(db, keys))  # the records, with their receipts
        token = keys.create("owned p00", "p00", False)[1]
        db.close()
        env["PKS_DATABASE_URL"] = database_url
    else:
        from search_api.audit.files import AuditLog

        audit = AuditLog(index, KeyStore(index))
        audit.prepare()  # what a server's start does once with records it has not counted
        audit.close()
        token = KeyStore(index).create("owned p00", "p00", False)[1]
    counted_s = time.perf_counter() - started
    with serving(index, env) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        headers = {"Authorization": f"Bearer {token}"}
        first = time.perf_counter()
        body = client.get("/v1/audit/owned", headers=headers).json()
        first_ms = (time.perf_counter() - first) * 1000
        millis, cpu_before = [], server.cpu_seconds()
        for _ in range(calls):
            began = time.perf_counter()
            response = client.get("/v1/audit/owned", headers=headers)
            millis.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.text
        server_ms = (server.cpu_seconds() - cpu_before) * 1000 / calls
    return {"records": records, "backend": "postgresql" if database_url else "files",
            "receipts": len(body["receipts"]),
            "p00_accesses": sum(r["count"] for r in body["receipts"]),
            "receipts_counted_once_s": round(counted_s, 1), "first_call_ms": round(first_ms, 1),
            **latency_summary(millis), "latency_ms_mean": round(statistics.mean(millis), 2),
            "server_cpu_ms_per_call": round(server_ms, 2),
            "load_average": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--index", type=Path, default=ROOT / "var/bench/owned-receipts")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    shutil.rmtree(args.index, ignore_errors=True)
    write_index(args.index)
    header = {**cpu(), "documents": DOCUMENTS, "partners": len(PARTNERS), "days": DAYS}
    print(json.dumps(header), flush=True)
    rows = []
    for records in args.records:
        rows.append(measure(args.index, records, args.calls, args.database_url))
        print(json.dumps(rows[-1]), flush=True)
    name = "owned_receipts_postgres.json" if args.database_url else "owned_receipts.json"
    write_results(args.json or ROOT / "benchmarks" / "results" / name, header, rows)


if __name__ == "__main__":
    main()
