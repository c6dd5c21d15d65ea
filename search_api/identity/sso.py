"""Sign-in behind a single-sign-on proxy: a trusted header names the user, a table maps users to
a partner (or admin).

The header is honoured only when the setting enables it and only on connections from the
configured proxy addresses; from anywhere else it is ignored and the API key decides, so nobody
can name themselves by sending the header directly. The table is validated at start-up with the
file and line of every problem:

    admins: [carol@northwind.example]
    partners:
      acme: [alice@acme.example, bob@acme.example]
      globex: [gina@globex.example]
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from starlette.requests import Request

from indexer.store.names import PARTNER_RE
from search_api.identity.principal import Principal
from search_api.settings import ApiSettings

TOP_KEYS = {"admins", "partners"}


class SsoConfigError(Exception):
    """A users table that cannot be trusted: the server does not start."""


@dataclass(frozen=True)
class SsoGate:
    enabled: bool
    header: str
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    users: dict[str, Principal]  # casefolded user name -> principal

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> SsoGate:
        if not settings.trust_user_header or settings.users_file is None:
            return cls(False, settings.user_header, (), {})
        proxies = tuple(ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies)
        return cls(True, settings.user_header, proxies, load_users(settings.users_file))

    def user_of(self, request: Request) -> str | None:
        """The user the proxy vouches for, or None (off, untrusted peer, or no header)."""
        if not self.enabled or request.client is None:
            return None
        try:
            peer = ipaddress.ip_address(request.client.host)
        except ValueError:
            return None
        if not any(peer in net for net in self.proxies):
            return None
        user = request.headers.get(self.header, "").strip()
        return user or None

    def principal_for(self, user: str) -> Principal | None:
        return self.users.get(user.casefold())


def _fail(path: Path, node: yaml.Node, message: str) -> SsoConfigError:
    return SsoConfigError(f"{path}:{node.start_mark.line + 1}: {message}")


def load_users(path: Path) -> dict[str, Principal]:
    """Parse the table from YAML nodes, so every error names its line."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SsoConfigError(f"{path}: cannot read the users file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise SsoConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(root, yaml.MappingNode):
        raise SsoConfigError(f"{path}:1: expected a mapping with 'admins' and/or 'partners'")
    users: dict[str, Principal] = {}
    for key, value in root.value:
        if key.value not in TOP_KEYS:
            raise _fail(path, key, f"unknown key '{key.value}' (expected: admins, partners)")
        if key.value == "admins":
            for name in _names(path, value, "admins"):
                _add(path, users, name, Principal(f"user:{name.value}", None, True))
            continue
        if not isinstance(value, yaml.MappingNode):
            raise _fail(path, value, "'partners' must map partner ids to lists of users")
        for partner, names in value.value:
            if not isinstance(partner, yaml.ScalarNode) or not PARTNER_RE.match(partner.value):
                raise _fail(path, partner, f"'{partner.value}' is not a partner id (lowercase "
                                           "letters, digits, '-')")
            for name in _names(path, names, f"partners.{partner.value}"):
                _add(path, users, name,
                     Principal(f"user:{name.value}", partner.value, False))
    return users


def _names(path: Path, node: yaml.Node, label: str) -> list[yaml.ScalarNode]:
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(path, node, f"'{label}' must be a list of user names")
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
            raise _fail(path, item, f"'{label}': each user must be a non-empty name")
    return list(node.value)


def _add(path: Path, users: dict[str, Principal], node: yaml.ScalarNode,
         principal: Principal) -> None:
    name = str(node.value).strip().casefold()
    if name in users:
        raise _fail(path, node, f"user '{node.value}' is listed twice (a user has one partner "
                                "or is an admin)")
    users[name] = principal
