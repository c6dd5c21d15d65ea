"""Command line of the search API.

    python -m search_api serve --index DIR [--host 127.0.0.1] [--port 8000]
                               [--ray ADDRESS|local] [--replicas N]
    python -m search_api keys create --index DIR (--partner ID | --admin) [--name TEXT]
                                     [--scope SCOPE ...]
    python -m search_api keys list --index DIR
    python -m search_api keys revoke KEY_ID --index DIR
    python -m search_api mcp --index DIR      (MCP over stdio; the key from PKS_API_KEY)
    python -m search_api audit --index DIR [--partner P] [--document D] [--since ISO]
                                           [--until ISO] [--limit N] [--json]

Exit codes: 0 done; 2 bad arguments or no usable index; 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--index", type=Path, help="index directory (env PKS_INDEX)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--ray", metavar="ADDRESS",
                       help="serve each shard of the index as a Ray Serve deployment on the "
                            "cluster at ADDRESS (its head's host:port), or 'local' to start "
                            "one on this machine (env PKS_RAY; needs the `cluster` extra)")
    serve.add_argument("--replicas", type=int, help="Ray Serve replicas per shard (default 1)")

    mcp = sub.add_parser("mcp", help="serve the MCP tools over stdio (key from PKS_API_KEY)")
    mcp.add_argument("--index", type=Path, help="index directory (env PKS_INDEX)")

    keys = sub.add_parser("keys", help="create, list and revoke API keys").add_subparsers(
        dest="action", required=True)
    create = keys.add_parser("create", help="create a key; it is printed once, as the last line")
    create.add_argument("--index", type=Path, required=True)
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--partner", help="the partner id whose documents the key may see")
    who.add_argument("--admin", action="store_true", help="a key that sees every document")
    create.add_argument("--name", default="", help="a label, e.g. who holds the key")
    create.add_argument(
        "--scope", action="append", dest="scopes", metavar="SCOPE",
        help="search, retrieve, documents or act-as; repeatable. Default: search, retrieve, "
             "documents. Naming any of those gives exactly the ones named; act-as (answer on "
             "behalf of another partner) is only given when named, on top of the others")
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
    from search_api.keys import KeyStore

    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = AuditLog(args.index, KeyStore(args.index))
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


def _settings(overrides: dict[str, Any]):  # -> ApiSettings | None (imported late: fast --help)
    from pydantic import ValidationError

    from search_api.settings import ApiSettings

    try:
        return ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return None


def _services(settings):  # -> Services | None: every component, or a message saying why not
    from indexer.embed import ModelLoadError
    from indexer.store.layout import StoreError
    from search_api.services import Services
    from search_api.sso import SsoConfigError

    try:
        return Services.open(settings)
    except SsoConfigError as exc:
        print(f"error: invalid users file: {exc}", file=sys.stderr)
    except (StoreError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        print("error: --ray needs Ray: pip install -e '.[cluster]'", file=sys.stderr)
    except ConnectionError as exc:  # no Ray cluster at that address
        print(f"error: cannot reach the Ray cluster at {settings.ray}: {exc}", file=sys.stderr)
    return None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from search_api.app import create_app

    settings = _settings({"index": args.index, "host": args.host, "port": args.port,
                          "ray": args.ray, "ray_replicas": args.replicas})
    if settings is not None and settings.ray == "local":
        # A cluster of this machine only: Ray then binds and connects on loopback (read by Ray
        # when it is imported, which happens after this line).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    services = _services(settings) if settings is not None else None
    if services is None:
        return EXIT_CONFIG
    try:
        # proxy_headers=False: the SSO check must see the real peer, not a forwarded-for claim.
        uvicorn.run(create_app(services), host=services.settings.host,
                    port=services.settings.port, log_level="info", proxy_headers=False)
    finally:
        services.close()
    return EXIT_OK


def _mcp(args: argparse.Namespace) -> int:
    """Stdio MCP server. stdout carries the protocol, so every message goes to stderr."""
    from search_api.deps import principal_for
    from search_api.errors import Unauthorized
    from search_api.keys import KeyStore
    from search_api.mcp_server import build_server

    settings = _settings({"index": args.index})
    if settings is None:
        return EXIT_CONFIG
    token = settings.api_key.get_secret_value() if settings.api_key else None
    try:  # the key first: a wrong one is reported before the slow index load
        principal_for(KeyStore(settings.index), token)
    except Unauthorized as exc:
        reason = "is not set" if not token else "is not a valid key (unknown or revoked)"
        print(f"error: PKS_API_KEY {reason}: set it to a key from `python -m search_api keys "
              f"create --index {settings.index} --partner ID` ({exc.message})", file=sys.stderr)
        return EXIT_CONFIG
    services = _services(settings)
    if services is None:
        return EXIT_CONFIG
    services.watch()
    try:
        build_server(lambda: services, lambda _ctx: token).run("stdio")
    finally:
        services.close()
    return EXIT_OK


def key_scopes(named: list[str] | None) -> frozenset[str]:
    """--scope as documented: surface scopes named replace the defaults; act-as only adds."""
    from search_api.access import ACT_AS, DEFAULT_SCOPES

    named_set = set(named or ())
    surfaces = named_set - {ACT_AS}
    return frozenset((surfaces or DEFAULT_SCOPES) | (named_set & {ACT_AS}))


def _keys(args: argparse.Namespace) -> int:
    from indexer.store.layout import StoreError
    from indexer.store.reader import live_partners
    from search_api.keys import KeyStore, KeyStoreError

    store = KeyStore(args.index)
    try:
        if args.action == "create":
            if not args.admin:
                partners = live_partners(args.index)
                if args.partner not in partners:
                    print(f"error: unknown partner '{args.partner}'; the index at {args.index} "
                          f"knows: {', '.join(partners) or 'none'}", file=sys.stderr)
                    return EXIT_CONFIG
            record, token = store.create(args.name, None if args.admin else args.partner,
                                         args.admin, key_scopes(args.scopes))
            who = "admin (sees every document)" if record.admin else f"partner {record.partner}"
            print(f"Created key {record.key_id} for {who}, "
                  f"scopes: {' '.join(sorted(record.scopes))}.")
            print("Store it now; it cannot be shown again:")
            print(token)
        elif args.action == "list":
            records = store.list()
            if not records:
                print("no keys")
            for r in records:
                status = f"revoked {r.revoked_at}" if r.revoked_at else "active"
                who = "admin" if r.admin else f"partner={r.partner}"
                scopes = "scopes=" + ",".join(sorted(r.scopes))
                print(f"{r.key_id}  {who:<20} {scopes:<40} {status:<32} "
                      f"created {r.created_at}  {r.name}")
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
        commands = {"serve": _serve, "mcp": _mcp, "keys": _keys, "audit": _audit}
        return commands[args.command](args)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        logging.getLogger("search_api").exception("failed")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
