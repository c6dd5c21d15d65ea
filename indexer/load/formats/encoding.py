"""Bytes of a text file to text: UTF-8 (or UTF-16 with a BOM), else a legacy encoding when one
can be told with confidence, else the encoding the corpus names for it (its access.yaml rule's,
or the corpus's: Windows-1252 unless set), else a reason to skip the file.

Partners' older tools still write Windows-1252 (or 1250, 1251, Shift_JIS...). chardet ranks the
candidate encodings by how well the decoded text fits a language model of each; we keep its
order but drop a candidate whose text is evidently wrong (a word mixing two alphabets, control
characters: what a wrong code page produces) and accept the first one only when no other
candidate that reads the bytes differently comes close. Western encodings that decode the same
bytes to the same text (ISO-8859-15 and Windows-1252 for "Café") are one answer, not a tie.

A short note often leaves a tie ("Genève dépôt été" reads as Windows-1252, 1250 or ISO-8859-16
alike). Then the corpus decides, as a browser falls back to Windows-1252 for Western text: the
file is read in the encoding it is given (`Fallback`), with the candidates named, so the build
report can warn which files were read that way. Bytes that no legacy encoding reads as text
(NUL bytes, control characters whatever the code page) are still refused.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

import chardet
from chardet.enums import EncodingEra

# Windows and ISO code pages, UTF-16/32, the CJK encodings: not DOS, Mac or EBCDIC pages, which
# fit short Western text almost as well as Windows-1252 and are rarely what a file really is.
ERAS = EncodingEra.MODERN_WEB | EncodingEra.LEGACY_ISO
# The first candidate is taken when it scores this much above every candidate that decodes the
# bytes to another text (chardet's scores are relative: ~0.1 is a clear winner on a paragraph).
MARGIN = 1.1
WORD = re.compile(r"[^\W\d_]+")
ALLOWED_CONTROLS = set("\t\n\r\f\v")
# Alphabets a word is written in one of (Unicode character names begin with the script).
ALPHABETS = {"LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "ARMENIAN", "GEORGIAN", "THAI"}


class UndecodableText(ValueError):
    """Why a file's bytes are not taken as text: a line a person can act on."""


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str | None  # the legacy encoding assumed; None for UTF-8 / UTF-16 with a BOM
    candidates: tuple[str, ...] = ()  # detection's rival readings, when `Fallback` decided


@dataclass(frozen=True)
class Fallback:
    """The encoding to read legacy text in when detection leaves rival readings, and what chose
    it (said in the build report's warning)."""

    encoding: str
    source: str


def decode(raw: bytes, fallback: Fallback | None = None) -> DecodedText:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, a legacy encoding told with confidence,
    or, when detection leaves rival readings, `fallback`'s; raises UndecodableText for binary
    data, or an encoding that cannot be told and no fallback that reads it."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return DecodedText(raw.decode("utf-16"), None)
    if b"\x00" in raw:
        raise UndecodableText("looks like a binary file (contains NUL bytes)")
    try:
        return DecodedText(raw.decode("utf-8-sig"), None)
    except UnicodeDecodeError as exc:
        invalid = f"invalid UTF-8 byte 0x{raw[exc.start]:02x} at offset {exc.start}"
    return _legacy(raw, invalid, fallback)


def _legacy(raw: bytes, invalid: str, fallback: Fallback | None) -> DecodedText:
    ranked = chardet.detect_all(raw, encoding_era=ERAS, prefer_superset=True,
                                ignore_threshold=True)
    if ranked and ranked[0]["encoding"] is None:
        raise UndecodableText(f"looks like a binary file ({invalid}, and no text encoding fits)")
    sample = raw[:chardet.DEFAULT_MAX_BYTES]  # what chardet examined
    plausible: list[tuple[str, float, str]] = []
    for candidate in ranked:
        name = _codec(candidate["encoding"])
        if name is None or any(name == seen for seen, _, _ in plausible):
            continue
        try:
            text = sample.decode(name)
        except UnicodeDecodeError:
            continue
        if not _garbled(text):
            plausible.append((name, float(candidate["confidence"] or 0.0), text))
    if not plausible:
        raise UndecodableText(f"not UTF-8 ({invalid}) and no legacy encoding reads it as text; "
                              "convert it to UTF-8")
    name, score, text = plausible[0]
    rival = next(((n, s) for n, s, t in plausible[1:] if t != text), None)
    if rival is not None and score < MARGIN * rival[1]:
        readings: dict[str, str] = {}  # one name per distinct reading close to the best
        for n, s, t in plausible:
            if s * MARGIN > score:
                readings.setdefault(t, n)
        tied = list(readings.values())
        if fallback is not None:
            return _fall_back(raw, invalid, fallback, tuple(tied))
        raise UndecodableText(f"not UTF-8 ({invalid}) and its encoding cannot be told: {name} "
                              f"and {rival[0]} read it differently; convert it to UTF-8")
    # Of the names for this same text, the Windows code page: the superset, and what wrote it.
    name = next((n for n, _, t in plausible if t == text and n.startswith("cp")), name)
    try:
        return DecodedText(raw.decode(name), name)
    except UnicodeDecodeError as exc:  # past what chardet examined
        raise UndecodableText(f"not UTF-8 ({invalid}) and not {name} either (byte "
                              f"0x{raw[exc.start]:02x} at offset {exc.start}); convert it to "
                              "UTF-8") from None


def _fall_back(raw: bytes, invalid: str, fallback: Fallback,
               candidates: tuple[str, ...]) -> DecodedText:
    """The bytes read in the corpus's encoding, detection's candidates kept for the report."""
    shown = ", ".join(candidates)
    try:
        text = raw.decode(fallback.encoding)
    except UnicodeDecodeError as exc:
        raise UndecodableText(
            f"not UTF-8 ({invalid}), its encoding cannot be told ({shown} read it differently), "
            f"and {fallback.encoding}, {fallback.source}, cannot read byte 0x{raw[exc.start]:02x} "
            f"at offset {exc.start}; name its encoding on its access.yaml rule ('encoding:') or "
            "convert it to UTF-8") from None
    if _garbled(text):
        raise UndecodableText(
            f"not UTF-8 ({invalid}), its encoding cannot be told ({shown} read it differently), "
            f"and {fallback.encoding}, {fallback.source}, reads it as garbled text; name its "
            "encoding on its access.yaml rule ('encoding:') or convert it to UTF-8")
    return DecodedText(text, fallback.encoding, candidates)


def _codec(name: str | None) -> str | None:
    """Python's name of an encoding chardet names (e.g. "Windows-1252" -> "cp1252")."""
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _garbled(text: str) -> bool:
    """What a wrong code page produces: control characters, or a word whose letters come from
    two alphabets ("qualitа" with a Cyrillic а)."""
    if any(unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS for c in text):
        return True
    for word in WORD.findall(text):
        if len({unicodedata.name(c, "?").split()[0] for c in word} & ALPHABETS) > 1:
            return True
    return False
