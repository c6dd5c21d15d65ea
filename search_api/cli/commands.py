"""The CLI's commands on the shared state: `keys`, `audit` and `db` (search_api/__main__.py
parses the arguments). Each opens the keys and audit the settings name (search_api/state/shared.py):
the files beside the index, or PostgreSQL when PKS_DATABASE_URL is set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from search_api.cli.options import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, settings_from


def open_state_for(index: Path | None):  # -> SharedState | None: keys and audit, or why not
    from search_api.state.shared import StateUnavailable, open_state

    settings = settings_from({"index": index})
    if settings is None:
        return None
    try:
        return open_state(settings)
    except StateUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def prune_command(args: argparse.Namespace) -> int:
    """`audit --prune`: apply the retention now, as a server does every few hours."""
    from search_api.audit.retention import first_kept_day
    from search_api.state.shared import StateUnavailable, open_state

    days = None if args.prune < 0 else args.prune  # --prune alone: PKS_AUDIT_RETENTION_DAYS
    settings = settings_from({"index": args.index, "audit_retention_days": days})
    if settings is None:
        return EXIT_CONFIG
    if settings.audit_retention_days <= 0:
        print("error: give the days to keep (--prune DAYS, or PKS_AUDIT_RETENTION_DAYS)",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        state = open_state(settings)
    except StateUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        pruned = state.audit.prune(first_kept_day(settings.audit_retention_days),
                                   settings.audit_export())
    finally:
        state.close()
    print(f"{pruned.records} audit records from before {pruned.before} exported and removed"
          + "".join(f"\n  {name}" for name in pruned.files))
    return EXIT_OK


def audit_command(args: argparse.Namespace) -> int:
    import json

    from search_api.audit.trail import AuditQuery, parse_time

    if args.prune is not None:
        return prune_command(args)
    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = open_state_for(args.index)
    if state is None:
        return EXIT_CONFIG
    try:
        found = state.audit.newest_first(AuditQuery(args.partner, args.document, since, until,
                                                    args.limit))
    finally:
        state.close()
    if not found:
        print(f"no audit records (in {state.where}) match", file=sys.stderr)
    for event in found:
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


def key_scopes(named: list[str] | None) -> frozenset[str]:
    """--scope as documented: surface scopes named replace the defaults; act-as only adds."""
    from search_api.identity.principal import ACT_AS, DEFAULT_SCOPES

    named_set = set(named or ())
    surfaces = named_set - {ACT_AS}
    return frozenset((surfaces or DEFAULT_SCOPES) | (named_set & {ACT_AS}))


def keys_command(args: argparse.Namespace) -> int:
    from indexer.store.layout import StoreError
    from indexer.store.reader import live_partners
    from search_api.identity.keys import KeyStoreError, KeyStoreUnavailable

    state = open_state_for(args.index)
    if state is None:
        return EXIT_CONFIG
    store = state.keys
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
    except KeyStoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        state.close()
    return EXIT_OK


def db_command(args: argparse.Namespace) -> int:
    """Schema migrations, and the one command that moves a server's files into the database."""
    settings = settings_from({"index": getattr(args, "index", None)})
    if settings is None:
        return EXIT_CONFIG
    if settings.database_url is None:
        print("error: set PKS_DATABASE_URL=postgresql://USER@HOST:PORT/DB first (the database "
              "every replica shares; docs/REPLICAS.md)", file=sys.stderr)
        return EXIT_CONFIG
    from search_api.state.postgres.audit import PostgresAudit
    from search_api.state.postgres.database import Database, DatabaseError
    from search_api.state.postgres.keys import PostgresKeys
    from search_api.state.postgres.transfer import move_local

    db = Database(settings.database_url.get_secret_value(), settings.database_pool_size)
    try:
        db.open()  # applies what is missing
        if args.action == "migrate":
            print(f"{db.where}: schema version {db.version()}")
            return EXIT_OK
        keys = PostgresKeys(db)
        moved = move_local(settings.index, keys, PostgresAudit(db, keys))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        db.close()
    print(f"Moved into {db.where}: {moved.keys} of {moved.keys_seen} keys "
          f"({moved.keys_seen - moved.keys} were there already) and {moved.records} of "
          f"{moved.records_seen} audit records ({moved.records_seen - moved.records} were there "
          f"already). The files in {settings.index} are kept as they were; with "
          "PKS_DATABASE_URL set they are no longer read or written.")
    return EXIT_OK
