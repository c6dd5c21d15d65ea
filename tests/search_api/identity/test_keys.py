from pathlib import Path

import pytest

from search_api.identity.keys import KeyStore, KeyStoreError


def test_keys_are_stored_hashed_and_authenticate(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    record, key = store.create("ops", "acme", False)
    admin_record, admin_key = store.create("root", None, True)
    assert key.startswith(f"pks_{record.key_id}_") and len(key) > 50
    raw = (tmp_path / "keys.sqlite").read_bytes()
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw
    assert oct((tmp_path / "keys.sqlite").stat().st_mode & 0o777) == "0o600"
    principal = store.authenticate(key)
    assert principal is not None and (principal.partner, principal.admin) == ("acme", False)
    assert store.authenticate(admin_key).admin is True
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate(f"pks_{record.key_id}") is None
    assert [r.key_id for r in store.list()] == [record.key_id, admin_record.key_id]


def test_revoke(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    record, key = store.create("", "acme", False)
    revoked = store.revoke(record.key_id)
    assert revoked.revoked_at is not None and store.authenticate(key) is None
    assert store.revoke(record.key_id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(KeyStoreError, match="no key with id 'nope'"):
        store.revoke("nope")


def test_a_key_is_for_one_partner_or_admin(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path).create("", "acme", True)
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path).create("", None, False)


def test_a_kept_connection_sees_a_revocation_by_another_process_and_a_replaced_file(
        tmp_path: Path) -> None:
    """Key checks keep their connection between requests; a revocation made through another
    store (the CLI, another worker) is still refused from the next check on, and a keys.sqlite
    replaced under the server is read afresh."""
    server, cli = KeyStore(tmp_path), KeyStore(tmp_path)
    record, key = cli.create("", "acme", False)
    assert server.authenticate(key) is not None  # opens and keeps this thread's connection
    cli.revoke(record.key_id)
    assert server.authenticate(key) is None
    (tmp_path / "keys.sqlite").unlink()
    assert server.authenticate(key) is None
    _, fresh = KeyStore(tmp_path).create("", "acme", False)
    assert server.authenticate(fresh) is not None
