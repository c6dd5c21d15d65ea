"""The single sign-on settings and users table: validated at start-up, errors name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from search_api.identity.principal import Principal
from search_api.identity.sso import SsoConfigError, SsoGate, load_users
from search_api.settings import ApiSettings
from tests.deployment import run


def users_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    return path


def test_a_good_table_maps_users_to_partners_and_admins(tmp_path: Path) -> None:
    users = load_users(users_file(tmp_path, "admins: [Carol@Host.example]\npartners:\n"
                                            "  acme: [alice@acme.example, bob@acme.example]\n"
                                            "  globex: []\n"))
    assert users["alice@acme.example"] == Principal("user:alice@acme.example", "acme", False)
    assert users["carol@host.example"].admin and users["carol@host.example"].partner is None
    assert set(users) == {"alice@acme.example", "bob@acme.example", "carol@host.example"}


@pytest.mark.parametrize("text, message", [
    ("admins: [a]\nadmin: [b]\n", "users.yaml:2: unknown key 'admin'"),
    ("partners:\n  acme: [a@x]\n  globex: [A@X]\n", "users.yaml:3: user 'A@X' is listed twice"),
    ("partners:\n  Acme!: [a@x]\n", "users.yaml:2: 'Acme!' is not a partner id"),
    ("partners:\n  acme: a@x\n", "users.yaml:2: 'partners.acme' must be a list"),
    ("partners:\n  acme:\n    - ''\n", "users.yaml:3: 'partners.acme': each user must be"),
    ("partners: [acme]\n", "users.yaml:1: 'partners' must map partner ids"),
    ("- a\n", "users.yaml:1: expected a mapping"),
    ("admins: [a\n", "not valid YAML"),
])
def test_a_bad_table_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SsoConfigError) as caught:
        load_users(users_file(tmp_path, text))
    assert message in str(caught.value)


def test_a_missing_table_stops_start_up(tmp_path: Path) -> None:
    settings = ApiSettings(index=tmp_path, trust_user_header=True,
                           trusted_proxies=["10.0.0.5"], users_file=tmp_path / "nope.yaml")
    with pytest.raises(SsoConfigError, match="cannot read the users file"):
        SsoGate.from_settings(settings)


@pytest.mark.parametrize("fields, message", [
    ({"trust_user_header": True}, "needs PKS_TRUSTED_PROXIES"),
    ({"trust_user_header": True, "trusted_proxies": "10.0.0.5"}, "and PKS_USERS_FILE"),
    ({"trusted_proxies": "10.0.0.5,proxy.example"}, "'proxy.example' is not an IP address"),
    ({"user_header": "X User"}, "not a valid HTTP header name"),
])
def test_incomplete_or_bad_settings_are_refused(tmp_path: Path, fields: dict,
                                                message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApiSettings(index=tmp_path, **fields)


def test_off_by_default_and_proxies_read_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SsoGate.from_settings(ApiSettings(index=tmp_path)).enabled is False
    monkeypatch.setenv("PKS_TRUSTED_PROXIES", "10.0.0.5, 192.168.1.0/24")
    assert ApiSettings(index=tmp_path).trusted_proxies == ["10.0.0.5", "192.168.1.0/24"]


def test_serve_refuses_to_start_with_a_bad_users_table(tmp_path: Path) -> None:
    bad = users_file(tmp_path, "partners:\n  acme: [alice@acme.example]\n"
                                "  globex: [Alice@acme.example]\n")
    env = {"PKS_TRUST_USER_HEADER": "1", "PKS_TRUSTED_PROXIES": "10.0.0.5",
           "PKS_USERS_FILE": str(bad)}
    done = run("search_api", "serve", "--index", str(tmp_path / "index"), env=env)
    assert done.returncode == 2
    assert f"{bad}:3: user 'Alice@acme.example' is listed twice" in done.stderr
