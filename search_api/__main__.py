"""Command line of the search API.

    python -m search_api serve --index DIR [--host 127.0.0.1] [--port 8000] [--workers N]
                               [--ray ADDRESS|local] [--replicas N]
    python -m search_api keys create --index DIR (--partner ID | --admin) [--name TEXT]
                                     [--scope SCOPE ...]
    python -m search_api keys list --index DIR
    python -m search_api keys revoke KEY_ID --index DIR
    python -m search_api mcp --index DIR      (MCP over stdio; the key from PKS_API_KEY)
    python -m search_api audit --index DIR [--partner P] [--document D] [--since ISO]
                                           [--until ISO] [--limit N] [--json]
    python -m search_api audit --index DIR --prune [DAYS]   (export, then remove, older records)
    python -m search_api db migrate             (PostgreSQL: apply schema migrations)
    python -m search_api db import --index DIR  (PostgreSQL: move keys.sqlite and the audit in)

Keys and audit live beside the index, or in PostgreSQL when PKS_DATABASE_URL is set
(docs/REPLICAS.md); `keys`, `audit` and `serve` use whichever is configured.

Exit codes: 0 done; 2 bad arguments or no usable index; 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from search_api.cli.commands import audit_command, db_command, keys_command, open_state_for
from search_api.cli.options import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, settings_from


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--index", type=Path, help="index directory (env PKS_INDEX)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int,
                       help="server processes sharing the index's vectors (env PKS_WORKERS, 1)")
    serve.add_argument("--ray", metavar="ADDRESS",
                       help="serve each shard of the index as a Ray Serve deployment on the "
                            "cluster at ADDRESS (its head's host:port), or 'local' to start a "
                            "private one on this machine (env PKS_RAY_ADDRESS; needs the "
                            "`cluster` extra; docs/CLUSTER.md)")
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
    audit.add_argument("--prune", type=int, nargs="?", const=-1, metavar="DAYS",
                       help="keep DAYS UTC days of records (default: PKS_AUDIT_RETENTION_DAYS); "
                            "export the older ones to PKS_AUDIT_EXPORT_DIR, then remove them")
    db = sub.add_parser("db", help="the shared PostgreSQL database (PKS_DATABASE_URL)")
    db_action = db.add_subparsers(dest="action", required=True)
    db_action.add_parser("migrate", help="apply the schema migrations this version needs")
    move = db_action.add_parser("import", help="move INDEX/keys.sqlite and INDEX/audit into "
                                "the database (keys keep working; safe to run again)")
    move.add_argument("--index", type=Path, required=True)
    return parser


def _services(settings):  # -> Services | int: every component, or the exit code, said why
    from indexer.embed.embedder import ModelLoadError
    from indexer.store.layout import StoreError
    from search_api.identity.sso import SsoConfigError
    from search_api.state.services import Services
    from search_api.state.shared import StateUnavailable

    try:
        return Services.open(settings)
    except SsoConfigError as exc:
        print(f"error: invalid users file: {exc}", file=sys.stderr)
    except (StoreError, ModelLoadError, StateUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        print("error: --ray needs Ray: pip install -e '.[cluster]'", file=sys.stderr)
    except _cluster_errors(settings) as exc:  # no cluster, or not one this server fits
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_CONFIG


def _cluster_errors(settings) -> tuple[type[Exception], ...]:
    """ClusterUnavailable, imported only for a server on Ray (a plain one never loads it)."""
    if settings.ray_address is None:
        return ()
    from search_api.cluster.lifecycle import ClusterUnavailable

    return (ClusterUnavailable,)


def _serve(args: argparse.Namespace) -> int:
    from search_api.cli.listening import listening, run_on
    from search_api.http.app import create_app

    settings = settings_from({"index": args.index, "host": args.host, "port": args.port,
                              "workers": args.workers, "ray_address": args.ray,
                              "ray_replicas": args.replicas})
    if settings is None:
        return EXIT_CONFIG
    if settings.workers > 1:
        return _serve_workers(settings)
    if settings.ray_address is not None:
        return _serve_on_ray(settings)
    sock = listening(settings.host, settings.port)
    if sock is None:
        return EXIT_FAILED
    with sock:
        services = _services(settings)
        if isinstance(services, int):
            return services
        try:
            run_on(sock, create_app(services))
        finally:
            services.close()
    return EXIT_OK


def _serve_on_ray(settings) -> int:  # settings: ApiSettings
    """`serve --ray`: a signal during start-up unwinds it, removing what it had deployed, and
    the process exits within PKS_RAY_SHUTDOWN_TIMEOUT_SECONDS + 5 s whatever Ray is doing; a
    signal while serving stops uvicorn, then the cluster's clean-up runs, bounded the same way
    (search_api/cluster/stopping.py)."""
    from search_api.cli.listening import listening, run_on
    from search_api.cluster.stopping import Stopped, ending_within, serving, starting
    from search_api.http.app import create_app

    sock = listening(settings.host, settings.port)  # before Ray's processes take ports
    if sock is None:
        return EXIT_FAILED
    with sock:
        try:
            with starting(settings.ray_shutdown_timeout_seconds + 5):
                services = _services(settings)
        except Stopped as stop:
            print(f"error: stopped by {stop.signal} during start-up; what it had deployed on "
                  "Ray was removed", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(services, int):
            return services
        try:
            with serving():
                run_on(sock, create_app(services))
        except Stopped:
            pass
        finally:
            with ending_within(settings.ray_shutdown_timeout_seconds + 5):
                services.close()
    return EXIT_OK


def _serve_workers(settings) -> int:  # settings: ApiSettings
    """`serve --workers N`: uvicorn's process model. Each worker assembles the service from
    the environment (search_api.http.app.worker_app): its own model and key store connections, the
    index's vectors memory-mapped and so shared, its own watcher of CURRENT. What would make
    every worker fail is checked here first, once, with a clear message."""
    import os

    import uvicorn

    from indexer.embed.embedder import ModelLoadError, model_location
    from indexer.store.layout import StoreError
    from indexer.store.reader import Generation
    from search_api.identity.sso import SsoConfigError, SsoGate

    try:
        SsoGate.from_settings(settings)
        model_location(Generation.open_live(settings.index).info["model"])
    except SsoConfigError as exc:
        print(f"error: invalid users file: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = open_state_for(settings.index)  # the database reachable, its schema up to date
    if state is None:
        return EXIT_CONFIG
    state.close()
    os.environ.update({"PKS_INDEX": str(settings.index.resolve()),
                       "PKS_WORKERS": str(settings.workers)})  # what the workers read
    uvicorn.run("search_api.http.app:worker_app", factory=True, workers=settings.workers,
                host=settings.host, port=settings.port, log_level="info", proxy_headers=False)
    return EXIT_OK


def _mcp(args: argparse.Namespace) -> int:
    """Stdio MCP server. stdout carries the protocol, so every message goes to stderr."""
    from search_api.errors import Unauthorized
    from search_api.http.deps import principal_for
    from search_api.http.mcp_server import build_server

    settings = settings_from({"index": args.index})
    state = open_state_for(args.index) if settings is not None else None
    if settings is None or state is None:
        return EXIT_CONFIG
    token = settings.api_key.get_secret_value() if settings.api_key else None
    try:  # the key first: a wrong one is reported before the slow index load
        principal_for(state.keys, token)
    except Unauthorized as exc:
        reason = "is not set" if not token else "is not a valid key (unknown or revoked)"
        print(f"error: PKS_API_KEY {reason}: set it to a key from `python -m search_api keys "
              f"create --index {settings.index} --partner ID` ({exc.message})", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        state.close()
    services = _services(settings)
    if isinstance(services, int):
        return services
    services.watch()
    try:
        build_server(lambda: services, lambda _ctx: token).run("stdio")
    finally:
        services.close()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "transformers", "sentence_transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        commands = {"serve": _serve, "mcp": _mcp, "keys": keys_command, "audit": audit_command,
                    "db": db_command}
        return commands[args.command](args)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        logging.getLogger("search_api").exception("failed")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
