"""E-mail (.eml): subject as title; sender, recipients and date as the text's header; the body.

The plain-text body is indexed; the HTML body's main text is used when there is no plain one
(or added when it says more than the plain one). Attachments of supported types become
documents of their own, with ids "mail.eml/attachment-name.pdf" but the e-mail's own path, so
the access rule that covers the e-mail covers its attachments too. They are loaded by the loader
that loads every file, which hands itself in (`attachments`): a format never imports the loader.
"""

from __future__ import annotations

import email
import email.policy
import re
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage, MIMEPart
from pathlib import Path, PurePosixPath

from indexer.load.document import (
    Document,
    LoadOptions,
    LoadResult,
    LoadWarning,
    Page,
    Skipped,
    content_sha,
)

HEADERS = ("From", "To", "Cc", "Date", "Subject")
MAX_DEPTH = 3  # e-mails attached to e-mails attached to ...


@dataclass(frozen=True)
class Attachments:
    """How attachments are loaded: the loader of every file, and the types it reads."""

    load_file: Callable[[Path, str, LoadOptions], Iterator[LoadResult]]
    supported: Collection[str]


def load_eml(path: Path, rel: str, options: LoadOptions, attachments: Attachments,
             depth: int = 0) -> Iterator[LoadResult]:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.get(h) for h in HEADERS):
        yield Skipped(rel, "not an e-mail (no From, To, Date or Subject header)")
        return
    subject = " ".join(str(message.get("Subject", "")).split())
    header = "\n".join(f"{name}: {_header(message, name)}" for name in HEADERS
                       if message.get(name))
    body = _body(message)
    page = Page(None, f"{header}\n\n{body}".strip())
    yield Document(rel, rel, subject or path.stem, (page,), content_sha([page]))
    yield from _attachments(message, rel, subject or path.name, options, attachments, depth)


def _header(message: EmailMessage, name: str) -> str:
    """Decoded header text; the date exactly as sent (the parser would rewrite its weekday)."""
    if name == "Date":
        raw = next((v for k, v in message.raw_items() if k.lower() == "date"), "")
        return " ".join(str(raw).split())
    return " ".join(str(message[name]).split())


def _body(message: EmailMessage) -> str:
    plain_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    plain = _content(plain_part).strip() if plain_part is not None else ""
    html = ""
    if html_part is not None:
        from indexer.load.formats.html import main_text

        html = main_text(_content(html_part)).strip()
    if plain and html and _says_nothing_more(html, plain):
        return plain
    return "\n\n".join(t for t in (plain, html) if t)


def _content(part: MIMEPart) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown or lying charset: decode leniently
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


def _says_nothing_more(html: str, plain: str) -> bool:
    """Up to a tenth of the HTML body's words may be missing from the plain one (markup
    leftovers, link texts) before the HTML body counts as saying more."""
    html_words = set(re.findall(r"\w+", html.lower()))
    missing = html_words - set(re.findall(r"\w+", plain.lower()))
    return len(missing) <= len(html_words) // 10


def _attachments(message: EmailMessage, rel: str, subject: str, options: LoadOptions,
                 attachments: Attachments, depth: int) -> Iterator[LoadResult]:
    used: set[str] = set()
    for part in message.iter_attachments():
        name = PurePosixPath((part.get_filename() or "").replace("\\", "/")).name
        if not name or PurePosixPath(name).suffix.lower() not in attachments.supported:
            continue
        name = _unique(name, used)
        inner_id = f"{rel}/{name}"
        if PurePosixPath(name).suffix.lower() == ".eml" and depth >= MAX_DEPTH:
            yield Skipped(inner_id, f"e-mail attachments nested more than {MAX_DEPTH} deep")
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            nested = part.get_content() if part.get_content_type() == "message/rfc822" else None
            payload = nested.as_bytes() if isinstance(nested, EmailMessage) else b""
        with tempfile.TemporaryDirectory(prefix="pks-attachment-") as tmp:
            file = Path(tmp) / name
            file.write_bytes(payload)
            results = (load_eml(file, inner_id, options, attachments, depth + 1)
                       if name.lower().endswith(".eml")
                       else attachments.load_file(file, inner_id, options))
            for item in list(results):
                yield _under_mail(item, rel, inner_id, subject)


def _under_mail(item: LoadResult, rel: str, inner_id: str, subject: str) -> LoadResult:
    """An attachment's document keeps the e-mail's path, hence its access rule."""
    if isinstance(item, Document):
        doc_id = item.doc_id if item.doc_id.startswith(inner_id) else f"{inner_id}:{item.doc_id}"
        return replace(item, doc_id=doc_id, path=rel,
                       title=f"{item.title} (attached to '{subject}')")
    if isinstance(item, LoadWarning):
        return LoadWarning(inner_id, item.message)
    return item


def _unique(name: str, used: set[str]) -> str:
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    used.add(candidate)
    return candidate
