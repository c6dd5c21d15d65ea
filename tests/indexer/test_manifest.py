from datetime import date
from pathlib import Path

import pytest

from indexer.manifest import ManifestError, load_manifest
from tests.factory import write

GOOD = """\
partners: [acme, globex, initech]
rules:
  - match: "shared/**"
    allow: "*"
  - match: "acme/**"
    allow: [acme]
    until: 2027-06-30
  - match: "acme/public/**"
    allow: [globex]
  - match: "*.md"
    allow: []
"""


def manifest_in(tmp_path: Path, text: str):
    write(tmp_path / "access.yaml", text)
    return load_manifest(tmp_path)


def test_first_matching_rule_decides(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, GOOD)
    assert m.partners == ("acme", "globex", "initech")
    assert m.grant_for("shared/deep/x.pdf").partners == {"acme", "globex", "initech"}
    acme = m.grant_for("acme/public/x.txt")  # rule 2 matches first; rule 3 never applies
    assert (acme.rule, acme.partners, acme.until) == (2, {"acme"}, date(2027, 6, 30))


def test_unmatched_file_is_visible_to_nobody(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, GOOD)
    grant = m.grant_for("internal/board.txt")
    assert grant.rule is None and grant.partners == frozenset()
    assert m.grant_for("acmeish/file.txt").partners == frozenset()  # no prefix leaks


def test_single_star_stays_within_one_directory(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, GOOD)
    assert m.grant_for("notes.md").rule == 4
    assert m.grant_for("sub/notes.md").rule is None


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("allow: [acme]", "allow: [acme, hooli]"),
     r"access.yaml:6: rule 2: unknown partner 'hooli' in 'allow'"),
    (GOOD.replace("2027-06-30", "2027-02-30"),
     r"access.yaml:7: rule 2: 'until' '2027-02-30' is not a real date"),
    (GOOD.replace("2027-06-30", "next june"), r"access.yaml:7: rule 2: 'until' must be a date"),
    (GOOD.replace("allow: [globex]", "alow: [globex]"),
     r"access.yaml:9: rule 3: unknown key 'alow'"),
    (GOOD.replace('  - match: "*.md"\n', '  - matches: "*.md"\n'),
     r"access.yaml:10: rule 4: unknown key"),
    (GOOD.replace("[acme, globex, initech]", "[Acme, globex]"),
     r"access.yaml:1: partner id 'Acme' is invalid"),
    (GOOD.replace("[acme, globex, initech]", "[acme, acme]"),
     r"access.yaml:1: partner 'acme' is listed twice"),
    ("partners: [acme]\nrules:\n  - match: [oops\n", r"access.yaml:\d+: invalid YAML"),
    ("partners: [acme]\n", r"access.yaml:1: missing 'rules'"),
    ("", r"access.yaml: empty manifest"),
    ("partners: [acme]\nrules:\n  - allow: [acme]\n", r"access.yaml:3: rule 1: missing 'match'"),
    ("partners: [acme]\nrules:\n  - match: '../x/**'\n    allow: [acme]\n",
     r"rule 1: 'match' '../x/\*\*' must be relative to the corpus root"),
])
def test_bad_manifest_names_file_line_and_rule(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ManifestError, match=expected):
        manifest_in(tmp_path, text)


def test_star_alone_or_in_a_list_means_every_listed_partner(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, "partners: [a, b]\nrules:\n  - match: 'x/**'\n    allow: ['*']\n"
                              "  - match: 'y/**'\n    allow: '*'\n")
    assert m.grant_for("x/1.txt").partners == m.grant_for("y/1.txt").partners == {"a", "b"}


def test_empty_until_means_no_expiry(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, "partners: [acme]\nrules:\n  - match: '**'\n    allow: [acme]\n"
                              "    until:\n")
    assert m.grant_for("x.txt").until is None


def test_missing_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="access.yaml: not found"):
        load_manifest(tmp_path)


def test_owner_and_password_variables(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, GOOD.replace('allow: [acme]\n', 'allow: [acme]\n    owner: acme\n')
                    + 'passwords:\n  "agreements/*.pdf": PKS_PASSWORD_AGREEMENTS\n')
    assert m.grant_for("acme/x.txt").owner == "acme"
    assert m.grant_for("shared/x.txt").owner is None
    assert m.password_env_for("agreements/nda.pdf") == "PKS_PASSWORD_AGREEMENTS"
    assert m.password_env_for("acme/nda.pdf") is None


@pytest.mark.parametrize("text, problem", [
    (GOOD.replace('allow: [acme]\n', 'allow: [acme]\n    owner: nobody\n'),
     "access.yaml:7: rule 2: 'owner' must be one listed partner"),
    (GOOD + 'passwords:\n  "a/*.pdf": "hunter 2!"\n',
     "access.yaml:13: passwords: 'a/*.pdf' must name an environment variable"),
    (GOOD + 'passwords:\n  "/a/*.pdf": PKS_X\n',
     "access.yaml:13: passwords: 'match' '/a/*.pdf' must be relative to the corpus root"),
])
def test_bad_owner_or_password_entry_names_the_line(tmp_path: Path, text: str,
                                                    problem: str) -> None:
    with pytest.raises(ManifestError, match=problem.replace("*", r"\*")):
        manifest_in(tmp_path, text)


def test_an_encoding_on_a_rule_or_the_corpus_decides_undetectable_text(tmp_path: Path) -> None:
    m = manifest_in(tmp_path, GOOD.replace("    until: 2027-06-30\n",
                                           "    until: 2027-06-30\n    encoding: Windows-1250\n"))
    assert m.encoding_for("acme/notes.txt") == ("cp1250", "access.yaml rule 2 (line 5)")
    assert m.encoding_for("shared/notes.txt") == ("cp1252", "the default for Western text")
    m = manifest_in(tmp_path, "encoding: latin2\n" + GOOD)
    assert m.encoding_for("shared/notes.txt") == ("iso8859-2",
                                                  "the corpus's 'encoding' in access.yaml")
    assert m.encoding_key() == "iso8859-2"


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("    allow: [globex]\n", "    allow: [globex]\n    encoding: latin-9x\n"),
     r"access.yaml:10: rule 3: 'encoding': 'latin-9x' is not a text encoding Python knows"),
    (GOOD.replace("    allow: [globex]\n", "    allow: [globex]\n    encoding: base64\n"),
     r"access.yaml:10: rule 3: 'encoding': 'base64' is not a text encoding"),
    ("encoding: utf-16\n" + GOOD, r"access.yaml:1: encoding: 'utf-16' is not a legacy encoding"),
])
def test_a_bad_encoding_names_the_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ManifestError, match=expected):
        manifest_in(tmp_path, text)
