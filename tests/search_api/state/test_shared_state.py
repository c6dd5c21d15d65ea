"""Keys and audit in a real PostgreSQL (tests/postgres.py), through the same CLI and HTTP API
as the files beside an index: schema migrations, revocation seen by every app at once, the
audits of two apps merged, moving a single server's files in, and failing closed (503) when
the database cannot be used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from indexer.build import BuildReport
from search_api.identity.keys import KeyStore
from search_api.retrieval.live import IndexHolder
from search_api.state.postgres.database import LATEST, Database, DatabaseError
from tests.deployment import app_client, run
from tests.search_api.conftest import auth

pytestmark = pytest.mark.slow  # starts a PostgreSQL server
QUERY = {"query": "solid electrolyte ionic conductivity", "top_k": 3}


@pytest.fixture()
def index(tmp_path: Path, access_index: tuple[Path, BuildReport]) -> Path:
    """A replica's own index directory (a copy of the access index, no keys, no audit)."""
    copy = tmp_path / "index"
    shutil.copytree(access_index[0], copy, ignore=shutil.ignore_patterns("keys.sqlite", "audit"))
    return copy


def key_of(ran_stdout: str) -> str:
    return ran_stdout.strip().splitlines()[-1]


def test_the_schema_is_versioned_and_applied_once(database_url: str) -> None:
    db = Database(database_url, 2).open()
    try:
        assert db.version() == LATEST
        assert db.migrate() == (LATEST, LATEST)  # nothing left to apply
        with db.connection() as conn:
            conn.execute("INSERT INTO pks_schema (version, description) VALUES (%s, 'future')",
                         (LATEST + 1,))
    finally:
        db.close()
    with pytest.raises(DatabaseError, match=f"schema version {LATEST + 1}, newer than"):
        Database(database_url, 2).open()
    ran = run("search_api", "db", "migrate", env={"PKS_DATABASE_URL": database_url})
    assert ran.returncode == 2 and "upgrade this replica" in ran.stderr


def test_keys_and_audit_live_in_the_database_not_beside_the_index(
        index: Path, holder: IndexHolder, database_url: str) -> None:
    env = {"PKS_DATABASE_URL": database_url}
    made = run("search_api", "keys", "create", "--index", str(index), "--partner", "alpha",
               "--name", "alpha laptop", env=env)
    assert made.returncode == 0, made.stderr
    admin = key_of(run("search_api", "keys", "create", "--index", str(index), "--admin",
                       env=env).stdout)
    with app_client(index, holder=holder, database_url=database_url) as client:
        found = client.post("/v1/search", json=QUERY, headers=auth(key_of(made.stdout)))
        assert found.status_code == 200 and found.json()["results"]
        audit = client.get("/v1/admin/audit", headers=auth(admin)).json()["events"]
        owned = client.get("/v1/audit/owned", headers=auth(key_of(made.stdout)))
    assert not (index / "keys.sqlite").exists() and not (index / "audit").exists()
    [event] = [e for e in audit if e["surface"] == "search"]
    assert event["key_name"] == "alpha laptop" and event["query"] == QUERY["query"]
    assert event["documents"][0]["doc_id"] == found.json()["results"][0]["doc_id"]
    assert owned.status_code == 200 and owned.json()["owner"] == "alpha"
    listed = run("search_api", "keys", "list", "--index", str(index), env=env)
    assert "alpha laptop" in listed.stdout and listed.stdout.count("active") == 2
    printed = run("search_api", "audit", "--index", str(index), "--partner", "alpha", "--json",
                  env=env)
    assert [json.loads(line)["query"] for line in printed.stdout.splitlines()] == [QUERY["query"]]


def test_a_key_revoked_anywhere_is_refused_by_every_app_at_the_next_request(
        tmp_path: Path, index: Path, holder: IndexHolder, database_url: str) -> None:
    other = tmp_path / "other-index"
    shutil.copytree(index, other)
    env = {"PKS_DATABASE_URL": database_url}
    made = run("search_api", "keys", "create", "--index", str(index), "--partner", "beta",
               env=env)
    key, key_id = key_of(made.stdout), made.stdout.split()[2]
    with app_client(index, holder=holder, database_url=database_url) as one, \
            app_client(other, holder=holder, database_url=database_url) as two:
        assert [c.post("/v1/search", json=QUERY, headers=auth(key)).status_code
                for c in (one, two)] == [200, 200]
        assert run("search_api", "keys", "revoke", key_id, "--index", str(other),
                   env=env).returncode == 0
        refused = [c.post("/v1/search", json=QUERY, headers=auth(key)) for c in (one, two)]
    assert [r.status_code for r in refused] == [401, 401]
    assert refused[0].json()["error"]["message"] == "unknown or revoked API key"


def test_moving_a_servers_files_in_keeps_every_key_and_record_once(
        index: Path, holder: IndexHolder, database_url: str) -> None:
    local = KeyStore(index)
    _, kept = local.create("kept", "alpha", False)
    gone, revoked = local.create("gone", "gamma", False)
    local.revoke(gone.key_id)
    with app_client(index, holder=holder) as client:  # files beside the index
        assert client.post("/v1/search", json=QUERY, headers=auth(kept)).status_code == 200
    env = {"PKS_DATABASE_URL": database_url}
    moved = run("search_api", "db", "import", "--index", str(index), env=env)
    assert moved.returncode == 0, moved.stderr
    assert "2 of 2 keys" in moved.stdout and "1 of 1 audit records" in moved.stdout
    again = run("search_api", "db", "import", "--index", str(index), env=env)
    assert "0 of 2 keys" in again.stdout and "0 of 1 audit records" in again.stdout
    with app_client(index, holder=holder, database_url=database_url) as client:
        assert client.post("/v1/search", json=QUERY, headers=auth(kept)).status_code == 200
        assert client.post("/v1/search", json=QUERY, headers=auth(revoked)).status_code == 401
    printed = run("search_api", "audit", "--index", str(index), "--json", env=env).stdout
    assert [json.loads(line)["key_name"] for line in printed.splitlines()] == ["kept", "kept"]


def test_an_unusable_database_fails_requests_closed_with_503(
        index: Path, holder: IndexHolder, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    env = {"PKS_DATABASE_URL": database_url}
    key = key_of(run("search_api", "keys", "create", "--index", str(index), "--partner", "alpha",
                     env=env).stdout)
    with app_client(index, holder=holder, database_url=database_url) as client, \
            psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE pks_audit RENAME TO pks_audit_away")
        unaudited = client.post("/v1/search", json=QUERY, headers=auth(key))
        conn.execute("ALTER TABLE pks_audit_away RENAME TO pks_audit")
        conn.execute("ALTER TABLE pks_api_keys RENAME TO pks_api_keys_away")
        unchecked = client.post("/v1/search", json=QUERY, headers=auth(key))
        conn.execute("ALTER TABLE pks_api_keys_away RENAME TO pks_api_keys")
        assert client.post("/v1/search", json=QUERY, headers=auth(key)).status_code == 200
    assert [answer.status_code for answer in (unaudited, unchecked)] == [503, 503]
    assert unaudited.json()["error"]["code"] == "audit_unavailable"
    assert unchecked.json()["error"]["code"] == "keys_unavailable"
    assert "audit" in unaudited.json()["error"]["message"]
    assert "keys cannot be checked" in unchecked.json()["error"]["message"]
    where = conninfo_to_dict(database_url)
    for answer in (unaudited, unchecked):  # nothing of the infrastructure: a request id
        rid = answer.headers["x-request-id"]
        assert f"request id {rid}" in answer.json()["error"]["message"]
        for secret in ("PostgreSQL", "postgres", str(where.get("host")), str(where.get("port")),
                       str(where.get("dbname")), "pks_audit", "pks_api_keys"):
            assert secret not in answer.text, secret
        assert any(rid in r.getMessage() and "pks_" in r.getMessage() + str(r.exc_info)
                   for r in caplog.records), rid  # the details are in the server log


def test_an_unreachable_database_is_named_without_its_password(index: Path) -> None:
    from tests.deployment import free_port

    url = f"postgresql://pks:s3cret@127.0.0.1:{free_port()}/pks?connect_timeout=1"
    ran = run("search_api", "keys", "list", "--index", str(index),
              env={"PKS_DATABASE_URL": url, "PKS_DATABASE_TIMEOUT_SECONDS": "1"})
    assert ran.returncode == 2
    assert "cannot connect to PostgreSQL at 127.0.0.1" in ran.stderr and "s3cret" not in ran.stderr
    bad = run("search_api", "keys", "list", "--index", str(index),
              env={"PKS_DATABASE_URL": "mysql://x@y/z"})
    assert bad.returncode == 2 and "must be a PostgreSQL URL" in bad.stderr
