"""Command line of the indexer.

    python -m indexer build --corpus DIR --index DIR [--shards N] [--report FILE] [--quiet]
                            [--ray ADDRESS|local [--ray-actors N]]
    python -m indexer generations --index DIR
    python -m indexer rollback --index DIR [--to NAME]
    python -m indexer ship --index DIR --to DIR [--keep N]   (a replica's index directory)

Exit codes: 0 ok (every file indexed); 1 failure, nothing changed; 2 bad arguments, settings or
access manifest, nothing changed; 3 published, but some files were skipped or kept in their
previous version (each listed with its reason); 4 another build holds the index's lock.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from indexer.progress import LOG_FORMAT

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_SKIPPED, EXIT_LOCKED = 0, 1, 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or rebuild) the index of a corpus and publish it")
    b.add_argument("--corpus", required=True, type=Path, help="corpus directory with access.yaml")
    b.add_argument("--index", required=True, type=Path, help="index directory (created if new)")
    b.add_argument("--model", help="embedding model: a directory or hub name (env PKS_MODEL)")
    b.add_argument("--chunk-tokens", type=int, help="chunk size in word pieces (default 200)")
    b.add_argument("--chunk-overlap", type=int, help="overlap in word pieces (default 32)")
    b.add_argument("--chunk-window", type=int,
                   help="boundary window in word pieces (default: half of --chunk-tokens)")
    b.add_argument("--batch-size", type=int, help="embedding batch size (default 16)")
    b.add_argument("--parse-timeout", type=float,
                   help="seconds one file may take to parse (env PKS_PARSE_TIMEOUT_SECONDS, 120)")
    b.add_argument("--ray", metavar="ADDRESS", dest="ray_address",
                   help="parse and embed on the Ray cluster at ADDRESS (host:port, "
                        "ray://host:port; 'local' starts one here; env PKS_RAY_ADDRESS); "
                        "needs the 'cluster' extra: pip install '.[cluster]'")
    b.add_argument("--ray-actors", type=int, metavar="N",
                   help="embedding actors on the cluster (env PKS_RAY_ACTORS; default: one "
                        "per GPU, else one per PKS_RAY_ACTOR_CPUS CPUs)")
    b.add_argument("--shards", type=int, help="write the generation as N shards by document, "
                   "each served by its own Ray Serve deployment (`serve --ray`); default 1")
    b.add_argument("--report", type=Path, help="also write the build report to FILE as JSON")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.add_argument("--quiet", action="store_true", help="print only the summary and errors")
    g = sub.add_parser("generations", help="list the kept generations; * marks the live one")
    g.add_argument("--index", required=True, type=Path)
    r = sub.add_parser("rollback", help="make an older generation live (default: the one before)")
    r.add_argument("--index", required=True, type=Path)
    r.add_argument("--to", metavar="NAME", help="generation name (see `generations`)")
    s = sub.add_parser("ship", help="copy the live generation to a replica's index directory "
                       "(a local path or a shared filesystem): files first, CURRENT last")
    s.add_argument("--index", required=True, type=Path, help="the index that was built")
    s.add_argument("--to", required=True, type=Path, dest="target",
                   help="the replica's index directory (created if new)")
    s.add_argument("--keep", type=int, default=3, help="generations the replica keeps (3)")
    return parser


def _settings(args: argparse.Namespace):  # -> IndexerSettings, imported late: keeps --help fast
    from indexer.settings import IndexerSettings

    overrides = {k: v for k, v in {
        "model": args.model, "chunk_tokens": args.chunk_tokens,
        "chunk_overlap": args.chunk_overlap, "chunk_window_tokens": args.chunk_window,
        "batch_size": args.batch_size,
        "parse_timeout_seconds": args.parse_timeout, "ray_address": args.ray_address,
        "ray_actors": args.ray_actors, "shards": args.shards,
    }.items() if v is not None}
    if args.no_progress or args.quiet or not sys.stderr.isatty():
        overrides["progress"] = False  # under cron: timestamped log lines instead of a bar
    return IndexerSettings(**overrides)


def _logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO, format=LOG_FORMAT)
    for noisy in ("faiss", "pypdf", "transformers", "sentence_transformers", "httpx",
                  "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _build(args: argparse.Namespace) -> int:
    """Build; --report FILE gets the report, or on failure the exit code and the error, so a
    monitor reading it never mistakes last night's success for tonight's. Every run, failed
    or not, is also recorded in INDEX/runs.jsonl (what /metrics and the Builds page read)."""
    started, clock = datetime.now(UTC), time.monotonic()
    code, error, report = _try_build(args)
    _record_run(args.index, started, time.monotonic() - clock, code, error, report)
    if error:
        print(f"error: {error}", file=sys.stderr)
    if args.report:
        if report is not None:
            report.write(args.report)
        else:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(json.dumps({
                "corpus": str(args.corpus), "index": str(args.index), "exit_code": code,
                "error": error, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }, indent=2) + "\n", encoding="utf-8")
    if report is not None:
        print("\n".join(report.summary_lines()), flush=True)
    return code


def _record_run(index: Path, started: datetime, seconds: float, code: int, error: str | None,
                report) -> None:  # report: BuildReport | None
    from indexer.store.runs import BuildRun, record_run

    run = BuildRun(started.isoformat(timespec="seconds"),
                   datetime.now(UTC).isoformat(timespec="seconds"), round(seconds, 2), code,
                   report.generation if report is not None else None, error,
                   len(report.skipped) + len(report.kept_previous) if report is not None else 0)
    try:
        record_run(index, run)
    except OSError as exc:  # the build's outcome stands; only its record is missing
        logging.getLogger("indexer").warning("could not record this run in %s: %s", index, exc)


def _try_build(args: argparse.Namespace):  # -> (exit code, error, BuildReport | None)
    from indexer.build import BuildError, ConfigError, build
    from indexer.embed.embedder import ModelLoadError
    from indexer.manifest import ManifestError
    from indexer.store.layout import StoreError
    from indexer.store.lock import LockHeld
    from indexer.workers import WorkersUnavailable

    try:
        report = build(args.corpus, args.index, _settings(args))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        return EXIT_CONFIG, f"invalid settings: {problems}", None
    except LockHeld as exc:
        return EXIT_LOCKED, str(exc), None
    except (ManifestError, ConfigError, ModelLoadError) as exc:
        return EXIT_CONFIG, f"{exc}\nNothing was changed.", None
    except (BuildError, StoreError) as exc:
        return EXIT_FAILED, str(exc), None
    except WorkersUnavailable as exc:
        return EXIT_FAILED, f"{exc}; nothing was published", None
    except KeyboardInterrupt:
        return EXIT_FAILED, "interrupted; nothing was published", None
    except Exception as exc:
        logging.getLogger("indexer").exception("build failed")
        return EXIT_FAILED, f"build failed: {type(exc).__name__}: {exc}; nothing was published", \
            None
    return (EXIT_OK if report.complete else EXIT_SKIPPED), None, report


def _generations(args: argparse.Namespace) -> int:
    from indexer.store.generations import list_generations

    gens = list_generations(args.index)
    if not gens:
        print(f"no generation in {args.index}", file=sys.stderr)
        return EXIT_FAILED
    print(f"  {'generation':<32} {'built (UTC)':<26} {'documents':>9} {'chunks':>9}")
    for g in gens:
        docs = "?" if g.documents is None else str(g.documents)
        chunks = "?" if g.chunks is None else str(g.chunks)
        print(f"{'*' if g.live else ' '} {g.name:<32} {g.built_at:<26} {docs:>9} {chunks:>9}"
              f"{'  (live)' if g.live else ''}")
    return EXIT_OK


def _rollback(args: argparse.Namespace) -> int:
    from indexer.store.generations import RollbackError, rollback
    from indexer.store.lock import LockHeld

    try:
        before, now = rollback(args.index, args.to)
    except LockHeld as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except RollbackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"live generation: {now} (was {before or 'none'}); a running server follows within "
          "PKS_RELOAD_SECONDS")
    return EXIT_OK


def _ship(args: argparse.Namespace) -> int:
    from indexer.store.layout import StoreError
    from indexer.store.lock import LockHeld
    from indexer.store.shipping import ship

    if args.keep < 1:
        print("error: --keep must be at least 1 (the live generation)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        shipped = ship(args.index, args.target, args.keep)
    except LockHeld as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    copied = f"{shipped.copied_bytes / 1e6:.1f} MB copied" if shipped.copied_bytes else \
        "already there"
    print(f"{args.target}: live generation {shipped.generation} ({copied}; was "
          f"{shipped.was_live or 'none'}); its servers follow within PKS_RELOAD_SECONDS")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _logging(getattr(args, "quiet", False))
    commands = {"build": _build, "generations": _generations, "rollback": _rollback,
                "ship": _ship}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
