"""What Word, PowerPoint and Excel files share: a ZIP package, possibly encrypted.

Before a parser sees a file, its package is checked so that a bad file becomes a one-line reason:
a PDF or legacy binary file under an Office name, a truncated ZIP, a package that would expand to
more than `max_unzipped_mb` (a zip bomb), or one that lacks its main part. Password-protected
files (an OLE2 container holding the encrypted package) are decrypted in memory with
msoffcrypto-tool when access.yaml names a variable holding the password.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from indexer.load.document import LoadOptions

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAIN_PART = {".docx": "word/document.xml", ".pptx": "ppt/presentation.xml",
             ".xlsx": "xl/workbook.xml"}
KIND = {".docx": "Word document", ".pptx": "PowerPoint deck", ".xlsx": "Excel workbook"}
ENCRYPTED = ("encrypted: no (valid) password configured (name an environment variable for it "
             "under 'passwords' in access.yaml)")


@dataclass(frozen=True)
class BadPackage(Exception):
    """The file cannot be opened as the Office package its name promises; `reason` says why."""

    reason: str


def open_package(path: Path, options: LoadOptions) -> io.BytesIO:
    """The file's checked OOXML package, decrypted if need be; raises BadPackage."""
    suffix = path.suffix.lower()
    kind = KIND[suffix]
    raw = path.read_bytes()
    if raw.startswith(OLE2_MAGIC):
        raw = _decrypt(raw, options.password, suffix)
    elif raw.startswith(b"%PDF"):
        raise BadPackage(f"not a valid {kind}: the file is a PDF (rename it to .pdf)")
    data = io.BytesIO(raw)
    try:
        archive = zipfile.ZipFile(data)
        names = archive.namelist()
        expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadPackage(f"not a valid {kind}: not a ZIP package, truncated or another format "
                         f"({exc})") from None
    if expanded > options.max_unzipped_mb * 1024 * 1024:
        raise BadPackage(f"{kind} would expand to {expanded / 1048576:.0f} MB, over the "
                         f"{options.max_unzipped_mb:g} MB limit (a zip bomb?)")
    if MAIN_PART[suffix] not in names:
        raise BadPackage(f"not a valid {kind}: the package has no {MAIN_PART[suffix]}")
    data.seek(0)
    return data


def _decrypt(raw: bytes, password: str | None, suffix: str) -> bytes:
    """An OLE2 container is either an encrypted OOXML package or a legacy .doc/.ppt/.xls."""
    try:
        import msoffcrypto
        from msoffcrypto.exceptions import DecryptionError, InvalidKeyError
    except ImportError:
        raise BadPackage("encrypted or legacy Office file, and msoffcrypto-tool (the parser "
                         "for encrypted Office files) is not installed") from None
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(raw))
        encrypted = office.is_encrypted()
    except Exception:
        encrypted = False
    if not encrypted:
        raise BadPackage(f"a legacy binary Office file (.doc/.ppt/.xls) named {suffix}: "
                         "save it in the current format")
    if not password:
        raise BadPackage(ENCRYPTED)
    out = io.BytesIO()
    try:
        office.load_key(password=password)
        office.decrypt(out)
    except (InvalidKeyError, DecryptionError):
        raise BadPackage(ENCRYPTED) from None
    except Exception as exc:
        raise BadPackage(f"encrypted Office file that cannot be decrypted: "
                         f"{type(exc).__name__}: {exc}") from None
    return out.getvalue()


def cell_rows(rows: list[list[str]]) -> list[str]:
    """Table rows as text that keeps each column's header: "Header: value; Header: value".

    Leading rows with a single cell (a sheet's title, a note) stay plain lines; the first row
    with two or more cells is the header row. A column without a header keeps its bare value,
    and empty cells are left out.
    """
    rows = [[" ".join(c.split()) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    out: list[str] = []
    while rows and sum(1 for c in rows[0] if c) < 2 and any(
            sum(1 for c in row if c) >= 2 for row in rows[1:]):
        out.append(next(c for c in rows.pop(0) if c))
    if not rows:
        return out
    header, body = rows[0], rows[1:]
    out.append(" | ".join(c for c in header if c))
    for row in body:
        if sum(1 for c in row if c) == 1:  # a note row, not a value of the first column
            out.append(next(c for c in row if c))
            continue
        cells = [f"{header[i]}: {value}" if i < len(header) and header[i] and header[i] != value
                 else value for i, value in enumerate(row) if value]
        out.append("; ".join(cells))
    return out
