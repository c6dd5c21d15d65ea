"""Command line: ``python -m indexer build --corpus DIR --index DIR``.

Exit codes: 0 all files indexed; 3 published but some files were skipped; 2 bad arguments,
configuration or access manifest (nothing changed); 1 any other failure (nothing changed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_SKIPPED = 0, 1, 2, 3


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
    b.add_argument("--batch-size", type=int, help="embedding batch size (default 16)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _settings(args: argparse.Namespace):  # -> IndexerSettings, imported late: keeps --help fast
    from indexer.settings import IndexerSettings

    overrides = {k: v for k, v in {
        "model": args.model, "chunk_tokens": args.chunk_tokens,
        "chunk_overlap": args.chunk_overlap, "batch_size": args.batch_size,
    }.items() if v is not None}
    if args.no_progress or not sys.stderr.isatty():
        overrides["progress"] = False
    return IndexerSettings(**overrides)


def _print_report(report) -> None:
    print(f"Published generation {report.generation} of {report.index} "
          f"from {report.corpus}")
    print(f"  documents indexed: {report.documents}")
    print(f"  skipped: {len(report.skipped)}")
    for skip in report.skipped:
        print(f"    - {skip.path}: {skip.reason}")
    if report.warnings:
        print(f"  warnings: {len(report.warnings)}")
        for warning in report.warnings:
            print(f"    - {warning.path}: {warning.message}")
    print(f"  chunks: {report.chunks} ({report.embedded} embedded, "
          f"{report.reused} reused from the previous generation)")
    print(f"  seconds: {report.seconds:.1f} (embedding {report.embed_seconds:.1f}); "
          f"{report.chunks_per_second:.1f} chunks/s")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "pypdf", "transformers", "sentence_transformers", "httpx",
                  "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from indexer.build import BuildError, ConfigError, build
    from indexer.embed import ModelLoadError
    from indexer.manifest import ManifestError
    from indexer.store import StoreError

    try:
        report = build(args.corpus, args.index, _settings(args))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return EXIT_CONFIG
    except (ManifestError, ConfigError, ModelLoadError) as exc:
        print(f"error: {exc}\nNothing was changed.", file=sys.stderr)
        return EXIT_CONFIG
    except (BuildError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; nothing was published", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        logging.getLogger("indexer").exception("build failed")
        print(f"error: build failed: {type(exc).__name__}: {exc}; nothing was published",
              file=sys.stderr)
        return EXIT_FAILED
    _print_report(report)
    return EXIT_SKIPPED if report.skipped else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
