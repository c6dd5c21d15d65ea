"""The builds for admins, in process: the kept generations with their reports, every recorded
run (the failed one included), the rollback (the indexer's own, under its build lock, served at
once and audited), and the build's outcome in /metrics."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.store.generations import list_generations
from indexer.store.layout import CURRENT
from indexer.store.lock import build_lock
from tests.deployment import BROKEN_PDF, NEW_DOC, app_client, create_key
from tests.search_api.conftest import auth


@pytest.fixture()
def site(history: tuple[Path, Path], tmp_path: Path) -> Iterator[dict]:
    """A copy of the history's index (a rollback changes it), served in process."""
    index = tmp_path / "index"
    shutil.copytree(history[1], index)
    keys = {"admin": create_key(index, None, "ops"), "alpha": create_key(index, "alpha", "a")}
    with app_client(index) as client:
        yield {"client": client, "keys": keys, "index": index}


def call(site: dict, who: str | None, path: str, body: dict | None = None):
    headers = auth(site["keys"][who]) if who else {}
    client: TestClient = site["client"]
    return client.get(path, headers=headers) if body is None else \
        client.post(path, json=body, headers=headers)


def live(index: Path) -> str:
    return (index / CURRENT).read_text().strip()


def test_admins_read_each_generation_with_its_report_and_every_run(site: dict) -> None:
    answer = call(site, "admin", "/v1/admin/builds")
    assert answer.status_code == 200
    body = answer.json()
    newest, older = body["builds"]
    assert body["live"] == body["serving"] == newest["generation"] == live(site["index"])
    assert newest["live"] and not older["live"]
    reports = {g.name: g.report for g in list_generations(site["index"])}
    for shown in (newest, older):  # the figures are the report's, as the build wrote them
        report = reports[shown["generation"]]
        for name in ("added", "changed", "unchanged", "deleted", "embedded", "reused",
                     "files_parsed", "files_carried", "seconds", "started_at", "finished_at",
                     "documents", "chunks"):
            assert shown[name] == report[name], name
    assert (older["added"], older["skipped"]) == (10, [])
    assert (newest["added"], newest["changed"], newest["deleted"]) == (1, 0, 0)
    [skipped] = newest["skipped"]
    assert skipped["path"] == BROKEN_PDF and "PDF" in skipped["reason"]
    assert newest["embedded"] >= 1 and newest["reused"] >= 1
    failed, partial, first = body["runs"]  # newest first
    assert (failed["exit_code"], failed["generation"]) == (2, None)
    assert "does not exist" in failed["error"] and "nothing was published" in failed["outcome"]
    assert (partial["exit_code"], partial["generation"], partial["skipped"]) == (
        3, newest["generation"], 1)
    assert (first["exit_code"], first["generation"], first["error"]) == (
        0, older["generation"], None)


def test_partners_and_strangers_get_nothing(site: dict) -> None:
    before = live(site["index"])
    for who, status in (("alpha", 403), (None, 401)):
        assert call(site, who, "/v1/admin/builds").status_code == status
        refused = call(site, who, "/v1/admin/builds/rollback", {})
        assert refused.status_code == status and set(refused.json()["error"]) == {"code",
                                                                                  "message"}
    assert live(site["index"]) == before


def search_docs(site: dict, query: str) -> set[str]:
    found = call(site, "alpha", "/v1/search", {"query": query, "top_k": 20})
    return {r["doc_id"] for r in found.json()["results"]}


def test_rollback_switches_what_is_served_and_is_audited(site: dict) -> None:
    newest, older = (b["generation"] for b in call(site, "admin", "/v1/admin/builds").json()
                     ["builds"])
    assert NEW_DOC in search_docs(site, "KESTREL batch 11 anneal")
    back = call(site, "admin", "/v1/admin/builds/rollback", {})  # as `rollback`: the one before
    assert back.status_code == 200
    assert back.json() == {"before": newest, "live": older, "serving": older}
    assert live(site["index"]) == older
    assert call(site, None, "/healthz").json()["generation"] == older  # served at once
    assert NEW_DOC not in search_docs(site, "KESTREL batch 11 anneal")
    forward = call(site, "admin", "/v1/admin/builds/rollback", {"to": newest})
    assert forward.json() == {"before": older, "live": newest, "serving": newest}
    events = call(site, "admin", "/v1/admin/audit?partner=admin").json()["events"]
    assert [(e["surface"], e["status"], e["query"], e["generation"]) for e in events] == [
        ("rollback", 200, f"{older} -> {newest}", newest),
        ("rollback", 200, f"{newest} -> {older}", older)]
    assert events[0]["key_name"] == "ops" and events[0]["documents"] == []
    metrics = call(site, "admin", "/metrics").text
    assert 'surface="other"' not in metrics  # a rollback is recorded, not counted as a search


def test_rollback_never_runs_beside_a_build_and_names_what_is_wrong(site: dict) -> None:
    before = live(site["index"])
    with build_lock(site["index"]):  # a build is running
        locked = call(site, "admin", "/v1/admin/builds/rollback", {})
    assert locked.status_code == 409 and locked.json()["error"]["code"] == "build_running"
    assert "another build is running" in locked.json()["error"]["message"]
    unknown = call(site, "admin", "/v1/admin/builds/rollback", {"to": "19990101T000000Z-000000"})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "rollback_refused"
    assert "no complete generation named '19990101T000000Z-000000'" in unknown.text
    for bad in ({"to": 7}, {"generation": "x"}, {"to": "x" * 201}):
        assert call(site, "admin", "/v1/admin/builds/rollback", bad).status_code == 422
    assert live(site["index"]) == before
    refused = call(site, "admin", "/v1/admin/audit?partner=admin").json()["events"]
    assert [(e["surface"], e["status"]) for e in refused] == [("rollback", 409)] * 2


def sample(metrics: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name} is not exported"
    return float(found.group(1))


def test_metrics_export_the_last_successful_build_and_the_last_run(site: dict) -> None:
    newest = call(site, "admin", "/v1/admin/builds").json()["builds"][0]
    text = call(site, "admin", "/metrics").text
    finished = datetime.fromisoformat(newest["finished_at"]).timestamp()
    assert sample(text, "pks_build_last_success_timestamp_seconds") == finished
    assert sample(text, "pks_build_duration_seconds") == newest["seconds"]
    assert sample(text, 'pks_build_documents{change="added"}') == 1
    assert sample(text, 'pks_build_files{outcome="skipped"}') == 1
    assert sample(text, 'pks_build_files{outcome="kept_previous"}') == 0
    assert sample(text, 'pks_build_chunks{source="embedded"}') == newest["embedded"]
    assert sample(text, "pks_build_last_run_exit_code") == 2  # tonight's run failed
    assert sample(text, "pks_build_last_run_timestamp_seconds") >= finished


def test_without_recorded_runs_only_the_published_build_is_exported(
        client: TestClient, keys: dict[str, str]) -> None:
    """An index built by `build()` itself (as this session's shared one is) has reports but
    no runs: no exit code is made up."""
    text = client.get("/metrics", headers=auth(keys["admin"])).text
    assert sample(text, "pks_build_last_success_timestamp_seconds") > 0
    assert "pks_build_last_run_exit_code" not in text
