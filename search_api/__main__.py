"""Command line of the search API.

    python -m search_api serve --index DIR [--host 127.0.0.1] [--port 8000]
    python -m search_api keys create --index DIR (--partner ID | --admin) [--name TEXT]
    python -m search_api keys list --index DIR
    python -m search_api keys revoke KEY_ID --index DIR
    python -m search_api audit --index DIR [--partner P] [--document D] [--since ISO]
                                           [--until ISO] [--limit N] [--json]

Exit codes: 0 done; 2 bad arguments or no usable index; 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--index", type=Path, help="index directory (env PKS_INDEX)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")

    keys = sub.add_parser("keys", help="create, list and revoke API keys").add_subparsers(
        dest="action", required=True)
    create = keys.add_parser("create", help="create a key; it is printed once, as the last line")
    create.add_argument("--index", type=Path, required=True)
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--partner", help="the partner id whose documents the key may see")
    who.add_argument("--admin", action="store_true", help="a key that sees every document")
    create.add_argument("--name", default="", help="a label, e.g. who holds the key")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--index", type=Path, required=True)
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--index", type=Path, required=True)
    audit = sub.add_parser("audit", help="read the audit log (who saw what), newest first")
    audit.add_argument("--index", type=Path, required=True)
    audit.add_argument("--partner", help="the key's partner, the partner acted for, or 'admin'")
    audit.add_argument("--document", help="a document id")
    audit.add_argument("--since", help="ISO date or time (UTC), e.g. 2026-11-25T09:00:00Z")
    audit.add_argument("--until", help="ISO date or time (UTC)")
    audit.add_argument("--limit", type=int, help="at most this many records")
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
    return parser


def _audit(args: argparse.Namespace) -> int:
    import json

    from search_api.audit import AuditLog, AuditQuery, parse_time

    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = AuditLog(args.index)
    if not log.segments():
        print(f"no audit records in {log.dir}", file=sys.stderr)
    for event in log.newest_first(AuditQuery(args.partner, args.document, since, until,
                                             args.limit)):
        if args.json:
            print(json.dumps(event, ensure_ascii=False))
            continue
        who = "admin" if event["admin"] else f"partner={event['partner']}"
        if event.get("on_behalf_of"):
            who += f" for={event['on_behalf_of']}"
        docs = ", ".join(f"{d['doc_id']}" + (f" (owner {d['owner']})" if d["owner"] else "")
                         for d in event["documents"]) or "-"
        query = json.dumps(event["query"], ensure_ascii=False) if event["query"] else "-"
        print(f"{event['time']}  {event['surface']:<8} {event['status']}  key {event['key_id']} "
              f"({event['key_name']})  {who}  query={query}  documents: {docs}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from indexer.embed import ModelLoadError
    from indexer.store import StoreError
    from search_api.app import create_app
    from search_api.deps import AppState
    from search_api.keys import KeyStore
    from search_api.live import IndexHolder
    from search_api.settings import ApiSettings
    from search_api.sso import SsoConfigError

    overrides = {k: v for k, v in {"index": args.index, "host": args.host,
                                   "port": args.port}.items() if v is not None}
    try:
        settings = ApiSettings(**overrides)
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:  # load before serving, so a missing index or model is a message, not a traceback
        holder = IndexHolder(settings.index, settings.torch_threads, settings.batching())
    except (StoreError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = AppState(holder, KeyStore(settings.index))
    try:
        app = create_app(settings, state)
    except SsoConfigError as exc:
        print(f"error: invalid users file: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # proxy_headers=False: the SSO check must see the real peer, not a forwarded-for claim.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                proxy_headers=False)
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    from indexer.store import Generation, StoreError
    from search_api.keys import KeyStore, KeyStoreError

    store = KeyStore(args.index)
    try:
        if args.action == "create":
            if not args.admin:
                partners = Generation.open_live(args.index).partners
                if args.partner not in partners:
                    print(f"error: unknown partner '{args.partner}'; the index at {args.index} "
                          f"knows: {', '.join(partners) or 'none'}", file=sys.stderr)
                    return EXIT_CONFIG
            record, token = store.create(args.name, None if args.admin else args.partner,
                                         args.admin)
            who = "admin (sees every document)" if record.admin else f"partner {record.partner}"
            print(f"Created key {record.key_id} for {who}.")
            print("Store it now; it cannot be shown again:")
            print(token)
        elif args.action == "list":
            records = store.list()
            if not records:
                print("no keys")
            for r in records:
                status = f"revoked {r.revoked_at}" if r.revoked_at else "active"
                who = "admin" if r.admin else f"partner={r.partner}"
                print(f"{r.key_id}  {who:<20} {status:<32} created {r.created_at}  {r.name}")
        else:
            record = store.revoke(args.key_id)
            print(f"Key {record.key_id} is revoked (since {record.revoked_at}).")
    except (KeyStoreError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "transformers", "sentence_transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        if args.command == "audit":
            return _audit(args)
        return _serve(args) if args.command == "serve" else _keys(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        logging.getLogger("search_api").exception("failed")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
