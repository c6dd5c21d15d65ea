"""The access manifest (``access.yaml``): which partner may see which file, and until when.

Parsed from YAML *nodes* rather than plain values so that every problem can name the file, the
line and the rule; dates are parsed here, strictly, instead of trusting YAML's timestamp magic.
The semantics are written down once in docs/ACCESS.md.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from indexer.store.names import PARTNER_RE, glob_problem, path_matches
from indexer.store.records import NO_GRANT, Grant

__all__ = ["MANIFEST_NAME", "NO_GRANT", "Grant", "Manifest", "ManifestError", "PasswordRule",
           "Rule", "load_manifest"]

MANIFEST_NAME = "access.yaml"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RULE_KEYS = {"match", "allow", "until", "owner", "encoding"}
# Legacy text that detection cannot tell is read in this, unless access.yaml says otherwise:
# the fallback browsers use for Western text (WHATWG Encoding, "windows-1252").
DEFAULT_ENCODING = "cp1252"
# Python text codecs that no file is written in (names, escapes, the codec that refuses all).
NOT_FILE_ENCODINGS = {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"}
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ManifestError(Exception):
    """A manifest that cannot be trusted: the build stops before anything changes."""


@dataclass(frozen=True)
class Rule:
    number: int  # 1-based position in `rules`, as a person counts
    line: int  # 1-based line in access.yaml
    pattern: str
    allow: frozenset[str]
    until: date | None
    owner: str | None = None  # the partner whose IP these files are: may read who saw them
    encoding: str | None = None  # legacy text that detection cannot tell is read in this


@dataclass(frozen=True)
class PasswordRule:
    """Files matching `pattern` open with the password held in environment variable `env`.

    The manifest names the variable, never the password: access.yaml is often under version
    control and readable by more people than the agreements it protects.
    """

    line: int
    pattern: str
    env: str


@dataclass(frozen=True)
class Manifest:
    path: Path
    partners: tuple[str, ...]
    rules: tuple[Rule, ...]
    passwords: tuple[PasswordRule, ...] = ()
    encoding: str = DEFAULT_ENCODING  # the corpus's: for files whose rule names none

    def encoding_for(self, relpath: str) -> tuple[str, str]:
        """The encoding a legacy text file is read in when detection leaves several readings,
        and what chose it: the first matching rule's `encoding`, else the corpus's."""
        for rule in self.rules:
            if path_matches(relpath, rule.pattern):
                if rule.encoding is not None:
                    return rule.encoding, f"access.yaml rule {rule.number} (line {rule.line})"
                break
        if self.encoding != DEFAULT_ENCODING:
            return self.encoding, "the corpus's 'encoding' in access.yaml"
        return self.encoding, "the default for Western text"

    def encoding_key(self) -> str:
        """What the encodings of access.yaml decide, as one string: a build whose key differs
        from the live generation's reads every file again (indexer/incremental.py)."""
        rules = [f"{r.pattern}={r.encoding}" for r in self.rules if r.encoding is not None]
        return ",".join([self.encoding, *rules])

    def grant_for(self, relpath: str) -> Grant:
        """First matching rule decides; no match means default deny (admins only)."""
        for rule in self.rules:
            if path_matches(relpath, rule.pattern):
                return Grant(rule=rule.number, partners=rule.allow, until=rule.until,
                             owner=rule.owner)
        return NO_GRANT

    def password_env_for(self, relpath: str) -> str | None:
        """Name of the environment variable holding this file's password (first match), if any."""
        for entry in self.passwords:
            if path_matches(relpath, entry.pattern):
                return entry.env
        return None


def load_manifest(corpus: Path) -> Manifest:
    """Read and validate ``corpus/access.yaml``; raise ManifestError naming file, line, problem."""
    path = corpus / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path}: not found. Every corpus needs an access manifest at its root "
            "(see docs/ACCESS.md); without one nothing would be visible to partners."
        )
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ManifestError(f"{path}{where}: invalid YAML: {exc.problem or exc}") from exc
    return _parse_root(path, root)


def _fail(path: Path, node: yaml.Node | None, message: str) -> ManifestError:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return ManifestError(f"{path}{line}: {message}")


def _mapping(path: Path, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping")
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _fail(path, key, f"{what}: keys must be plain names")
        if key.value in out:
            raise _fail(path, key, f"{what}: duplicate key '{key.value}'")
        out[key.value] = (key, value)
    return out


def _parse_root(path: Path, root: yaml.Node | None) -> Manifest:
    if root is None:
        raise ManifestError(f"{path}: empty manifest; it needs 'partners' and 'rules'")
    top = _mapping(path, root, "the manifest")
    unknown = sorted(set(top) - {"partners", "rules", "passwords", "encoding"})
    if unknown:
        raise _fail(path, top[unknown[0]][0],
                    f"unknown key '{unknown[0]}' (expected partners, rules, passwords, "
                    "encoding)")
    if "partners" not in top:
        raise _fail(path, root, "missing 'partners': the list of partner ids")
    if "rules" not in top:
        raise _fail(path, root, "missing 'rules': the list of access rules")
    partners = _parse_partners(path, top["partners"][1])
    rules_node = top["rules"][1]
    if not isinstance(rules_node, yaml.SequenceNode):
        raise _fail(path, rules_node, "'rules' must be a list")
    rules = tuple(
        _parse_rule(path, number, node, partners)
        for number, node in enumerate(rules_node.value, start=1)
    )
    passwords = _parse_passwords(path, top["passwords"][1]) if "passwords" in top else ()
    encoding = _parse_encoding(path, "encoding", top["encoding"][1]) if "encoding" in top \
        else DEFAULT_ENCODING
    return Manifest(path=path, partners=partners, rules=rules, passwords=passwords,
                    encoding=encoding)


def _parse_encoding(path: Path, label: str, node: yaml.Node) -> str:
    """A text encoding Python reads, by its Python name ("windows-1250" -> "cp1250"). Not a
    codec of bytes to bytes (base64), and not one that needs a BOM to be told (UTF-16/32)."""
    value = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
    try:
        name = codecs.lookup(value).name
        "a".encode(name)  # refuses codecs that are not text encodings (base64, rot13...)
        if name in NOT_FILE_ENCODINGS:
            raise LookupError(name)
    except (LookupError, UnicodeError):
        raise _fail(path, node, f"{label}: '{value}' is not a text encoding Python knows; use a "
                                "name such as cp1252, cp1250, iso8859-2 or shift_jis") from None
    if name.startswith(("utf-16", "utf-32")) or name in {"utf-8", "utf-8-sig", "ascii"}:
        raise _fail(path, node, f"{label}: '{value}' is not a legacy encoding: UTF-8 and "
                                "UTF-16 with a BOM are read without being named; name the "
                                "legacy code page the files are in, such as cp1252 or cp1250")
    return name


def _parse_passwords(path: Path, node: yaml.Node) -> tuple[PasswordRule, ...]:
    """`passwords: {glob: ENV_VAR_NAME}`; a value that is not a variable name is refused, so a
    password pasted in by mistake stops the build instead of being used (and leaked)."""
    entries: list[PasswordRule] = []
    for pattern, (key, value) in _mapping(path, node, "'passwords'").items():
        glob_pattern = _parse_pattern(path, "passwords", key)
        env = str(value.value).strip() if isinstance(value, yaml.ScalarNode) else ""
        if not ENV_NAME_RE.match(env):
            raise _fail(path, value, f"passwords: '{pattern}' must name an environment variable "
                                     "(letters, digits, '_'), e.g. PKS_PASSWORD_AGREEMENTS; never "
                                     "write the password itself in access.yaml")
        entries.append(PasswordRule(line=key.start_mark.line + 1, pattern=glob_pattern, env=env))
    return tuple(entries)


def _parse_partners(path: Path, node: yaml.Node) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(path, node, "'partners' must be a list of partner ids")
    seen: list[str] = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not PARTNER_RE.match(str(item.value)):
            shown = item.value if isinstance(item, yaml.ScalarNode) else "a non-scalar"
            raise _fail(
                path, item,
                f"partner id '{shown}' is invalid: use lowercase letters, digits and '-'",
            )
        if item.value in seen:
            raise _fail(path, item, f"partner '{item.value}' is listed twice")
        seen.append(item.value)
    return tuple(seen)


def _parse_rule(path: Path, number: int, node: yaml.Node, partners: tuple[str, ...]) -> Rule:
    label = f"rule {number}"
    fields = _mapping(path, node, label)
    unknown = sorted(set(fields) - RULE_KEYS)
    if unknown:
        raise _fail(path, fields[unknown[0]][0],
                    f"{label}: unknown key '{unknown[0]}' (expected match, allow, until, owner, "
                    "encoding)")
    for required in ("match", "allow"):
        if required not in fields:
            raise _fail(path, node, f"{label}: missing '{required}'")
    return Rule(
        number=number,
        line=node.start_mark.line + 1,
        pattern=_parse_pattern(path, label, fields["match"][1]),
        allow=_parse_allow(path, label, fields["allow"][1], partners),
        until=_parse_until(path, label, fields["until"][1]) if "until" in fields else None,
        owner=_parse_owner(path, label, fields["owner"][1], partners) if "owner" in fields
        else None,
        encoding=_parse_encoding(path, f"{label}: 'encoding'", fields["encoding"][1])
        if "encoding" in fields else None,
    )


def _parse_owner(path: Path, label: str, node: yaml.Node, partners: tuple[str, ...]) -> str:
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    if value not in partners:
        known = ", ".join(partners) or "none"
        raise _fail(path, node, f"{label}: 'owner' must be one listed partner, got '{value}' "
                                f"(listed partners: {known})")
    return str(value)


def _parse_pattern(path: Path, label: str, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise _fail(path, node, f"{label}: 'match' must be a non-empty glob such as \"shared/**\"")
    pattern = str(node.value).strip()
    if (problem := glob_problem(pattern)) is not None:
        raise _fail(path, node, f"{label}: 'match' '{pattern}' {problem}")
    return pattern


def _parse_allow(path: Path, label: str, node: yaml.Node,
                 partners: tuple[str, ...]) -> frozenset[str]:
    if isinstance(node, yaml.ScalarNode) and node.value == "*":
        return frozenset(partners)
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(path, node, f"{label}: 'allow' must be a list of partner ids or \"*\"")
    allowed: set[str] = set()
    for item in node.value:
        value = item.value if isinstance(item, yaml.ScalarNode) else None
        if value == "*":  # ["*"] reads as "*": every listed partner
            return frozenset(partners)
        if value not in partners:
            known = ", ".join(partners) or "none"
            raise _fail(path, item, f"{label}: unknown partner '{value}' in 'allow' "
                                    f"(listed partners: {known})")
        allowed.add(value)
    return frozenset(allowed)


def _parse_until(path: Path, label: str, node: yaml.Node) -> date | None:
    """YYYY-MM-DD, or empty/null for no expiry; parsed here, not by YAML's timestamp rules."""
    value = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return None
    if DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise _fail(path, node,
                        f"{label}: 'until' {value!r} is not a real date ({exc})") from exc
    raise _fail(path, node, f"{label}: 'until' must be a date written YYYY-MM-DD, got {value!r}")
