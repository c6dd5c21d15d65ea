"""Key scopes: each surface needs its scope (403 otherwise); act-as narrows to what BOTH the key's
partner and the partner it acts for may see; keys.sqlite of older deployments is migrated."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildReport, build
from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from search_api.access.allowed import AccessIndex
from search_api.audit.files import AuditLog
from search_api.identity.keys import KeyStore, KeyStoreError
from search_api.identity.principal import DEFAULT_SCOPES, AccessDenied, Principal
from tests.conftest import VISIBLE
from tests.deployment import Ran, app_client, run
from tests.factory import write
from tests.search_api.conftest import auth

QUERY = "HERON swelling sensors KESTREL electrolyte OSPREY fibre steering committee"


def make_key(index: Path, partner: str | None, *scopes: str) -> str:
    return KeyStore(index).create("test", partner, partner is None, frozenset(scopes))[1]


def call(client: TestClient, path: str, key: str, **fields: object) -> tuple[int, dict]:
    response = client.post(path, json={"query": QUERY, "top_k": 100, **fields},
                           headers=auth(key))
    return response.status_code, response.json()


def docs_of(path: str, body: dict) -> set[str]:
    return {r["doc_id"] for r in body["results" if path == "/v1/search" else "passages"]}


def test_each_surface_needs_its_scope(client: TestClient,
                                      access_index: tuple[Path, BuildReport]) -> None:
    index = access_index[0]
    only_retrieve = make_key(index, "alpha", "retrieve")
    only_search = make_key(index, "alpha", "search")
    assert call(client, "/v1/retrieve", only_retrieve)[0] == 200
    assert call(client, "/v1/search", only_search)[0] == 200
    for path, key, scope in (("/v1/search", only_retrieve, "search"),
                             ("/v1/retrieve", only_search, "retrieve")):
        status, body = call(client, path, key)
        assert status == 403 and set(body) == {"error"}
        error = body["error"]
        assert error["code"] == "forbidden" and f"scope '{scope}'" in error["message"]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/retrieve"])
def test_on_behalf_of_without_act_as_is_403(client: TestClient, keys: dict[str, str],
                                            path: str) -> None:
    for on_behalf_of in ("beta", "nobody"):  # the same answer whether the partner exists or not
        status, body = call(client, path, keys["alpha"], on_behalf_of=on_behalf_of)
        assert status == 403 and "act-as" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/retrieve"])
def test_act_as_sees_only_what_both_may_see(client: TestClient,
                                            access_index: tuple[Path, BuildReport],
                                            path: str) -> None:
    index = access_index[0]
    bot = make_key(index, "alpha", *DEFAULT_SCOPES, "act-as")
    alone = call(client, path, bot)
    assert alone[0] == 200 and docs_of(path, alone[1]) == VISIBLE["alpha"]
    for partner in ("beta", "gamma", "alpha"):
        status, body = call(client, path, bot, on_behalf_of=partner)
        assert status == 200 and docs_of(path, body) == VISIBLE["alpha"] & VISIBLE[partner]
    assert "joint/integration.md" in docs_of(path, call(client, path, bot, on_behalf_of="beta")[1])
    status, body = call(client, path, bot, on_behalf_of="nobody")  # unknown: empty, no hint
    assert status == 200 and docs_of(path, body) == set()
    admin = make_key(index, None, "search", "retrieve", "act-as")
    assert docs_of(path, call(client, path, admin, on_behalf_of="beta")[1]) == VISIBLE["beta"]


def test_access_index_intersects_allowed_sets(access_index: tuple[Path, BuildReport]) -> None:
    access = AccessIndex(Generation.open_live(access_index[0]))
    today = date(2026, 11, 23)
    bot = Principal("k", "alpha", False, frozenset({"act-as"}))
    alpha, beta = (access.allowed_for(Principal("k", p, False), today) for p in ("alpha", "beta"))
    both = access.allowed_for(bot, today, on_behalf_of="beta")
    assert np.array_equal(both.ids, np.intersect1d(alpha.ids, beta.ids))
    assert 0 < len(both) < min(len(alpha), len(beta)) and not both.ids.flags.writeable
    assert len(access.allowed_for(bot, today, on_behalf_of="gamma-unknown")) == 0
    with pytest.raises(AccessDenied):
        access.allowed_for(Principal("k", "alpha", False), today, on_behalf_of="beta")


OLD_SCHEMA = """CREATE TABLE api_keys(key_id TEXT PRIMARY KEY, name TEXT NOT NULL, partner TEXT,
    admin INTEGER NOT NULL CHECK (admin IN (0, 1)), key_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT,
    CHECK ((admin = 1 AND partner IS NULL) OR (admin = 0 AND partner IS NOT NULL)));"""


def test_keys_of_an_older_deployment_are_migrated_and_keep_working(tmp_path: Path) -> None:
    old_key = "pks_0123456789ab_oldsecret"
    db = sqlite3.connect(tmp_path / "keys.sqlite")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO api_keys VALUES ('0123456789ab', 'legacy', 'acme', 0, ?, "
               "'2026-01-01T00:00:00+00:00', NULL)",
               (hashlib.sha256(old_key.encode()).hexdigest(),))
    db.commit()
    db.close()
    store = KeyStore(tmp_path)
    principal = store.authenticate(old_key)
    assert principal is not None and principal.partner == "acme"
    assert principal.scopes == DEFAULT_SCOPES and "act-as" not in principal.scopes
    _, new_key = store.create("bot", "acme", False, frozenset({"retrieve", "act-as"}))
    assert [(r.name, r.scopes) for r in KeyStore(tmp_path).list()] == [
        ("legacy", DEFAULT_SCOPES), ("bot", frozenset({"retrieve", "act-as"}))]
    assert KeyStore(tmp_path).authenticate(new_key).scopes == {"retrieve", "act-as"}
    with pytest.raises(KeyStoreError, match="unknown scope"):
        store.create("x", "acme", False, frozenset({"admin"}))


def test_cli_creates_scoped_keys_and_lists_scopes(access_index: tuple[Path, BuildReport],
                                                  tmp_path: Path) -> None:
    index = str(access_index[0])

    def cli(*args: str) -> Ran:
        return run("search_api", "keys", *args, "--index", index)

    bot = cli("create", "--partner", "alpha", "--scope", "act-as", "--name", "cli bot")
    assert bot.returncode == 0, bot.stderr
    narrow = cli("create", "--partner", "beta", "--scope", "retrieve", "--name", "cli narrow")
    assert narrow.returncode == 0, narrow.stderr
    store = KeyStore(access_index[0])
    bot_principal = store.authenticate(bot.stdout.strip().splitlines()[-1])
    assert bot_principal is not None
    assert bot_principal.scopes == {"search", "retrieve", "documents", "act-as"}
    assert store.authenticate(narrow.stdout.strip().splitlines()[-1]).scopes == {"retrieve"}
    listing = cli("list").stdout
    assert "scopes=act-as,documents,retrieve,search" in listing and "scopes=retrieve " in listing
    bad = cli("create", "--partner", "alpha", "--scope", "everything")
    assert bad.returncode == 2 and "unknown scope(s) everything" in bad.stderr


def test_retrieve_on_behalf_of_is_audited(client: TestClient,
                                          access_index: tuple[Path, BuildReport]) -> None:
    index = access_index[0]
    bot = make_key(index, "alpha", "retrieve", "act-as")
    status, body = call(client, "/v1/retrieve", bot, on_behalf_of="beta")
    assert status == 200
    key_id = bot.split("_")[1]
    [event] = [e for e in AuditLog(index, KeyStore(index)).events() if e["key_id"] == key_id]
    assert (event["surface"], event["partner"], event["on_behalf_of"]) == \
        ("retrieve", "alpha", "beta")
    assert [d["doc_id"] for d in event["documents"]] == \
        list(dict.fromkeys(p["doc_id"] for p in body["passages"]))


def test_act_as_tells_a_partner_that_shares_nothing_from_one_that_does_not_exist(
        tmp_path: Path, settings: IndexerSettings, embedder: Embedder) -> None:
    """Neither the answer nor its scores: both are exactly the empty answer. What an act-as key
    does learn is which of its own partner's documents the other partner may see too (and so
    that such a partner exists): docs/ACCESS.md, "Acting on behalf of a partner"."""
    corpus = tmp_path / "corpus"
    write(corpus / "access.yaml", "partners: [alpha, beta, loner]\nrules:\n"
                                  "  - match: 'shared/**'\n    allow: [alpha, beta]\n"
                                  "  - match: 'alpha/**'\n    allow: [alpha]\n"
                                  "  - match: 'loner/**'\n    allow: [loner]\n")
    write(corpus / "shared/plan.md", "The joint plan: HERON sensors in KESTREL cells.")
    write(corpus / "alpha/notes.md", "Alpha's notes on the KESTREL electrolyte.")
    write(corpus / "loner/own.md", "The loner's own KESTREL study, shared with nobody.")
    build(corpus, tmp_path / "index", settings, embedder)
    bot = make_key(tmp_path / "index", "alpha", "search", "retrieve", "act-as")
    with app_client(tmp_path / "index") as client:
        for path in ("/v1/search", "/v1/retrieve"):
            modes = ("hybrid", "dense", "lexical") if path == "/v1/search" else (None,)
            for mode in modes:
                extra = {"mode": mode} if mode else {}
                loner = call(client, path, bot, on_behalf_of="loner", **extra)
                nobody = call(client, path, bot, on_behalf_of="no-such-partner", **extra)
                assert loner == nobody and loner[0] == 200
                assert docs_of(path, loner[1]) == set()
                assert docs_of(path, call(client, path, bot, on_behalf_of="beta", **extra)[1]) \
                    == {"shared/plan.md"}
