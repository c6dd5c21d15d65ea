"""The builds, as an operator reads them: the kept generations with their reports, every
recorded run (failed ones included), and the rollback, for the Builds page and /metrics.

Everything is read from the index directory through `indexer.store` (generations.py, runs.py):
the reports were written by the build pipeline, which the API never imports, so they are read
here as the JSON they are, tolerating fields an older build did not write.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from indexer.store.generations import GenerationInfo, RollbackError, list_generations, rollback
from indexer.store.lock import LockHeld
from indexer.store.runs import EXIT_INTERRUPTED, BuildRun, read_runs
from search_api.audit.trail import Audit
from search_api.errors import ApiError
from search_api.identity.principal import Principal
from search_api.retrieval.live import IndexHolder

RUNS_SHOWN = 20
OUTCOMES = {0: "ok", 1: "failed: nothing was published",
            2: "configuration or access.yaml error: nothing was published",
            3: "published, with files skipped or kept in their previous version",
            4: "not run: another build held the lock",
            EXIT_INTERRUPTED: "interrupted: it stopped without recording an outcome"}


class FileNote(BaseModel):
    path: str
    reason: str


class Build(BaseModel):
    generation: str
    live: bool = Field(description="Whether the index serves this generation now.")
    started_at: str | None
    finished_at: str | None = Field(description="UTC, ISO 8601.")
    seconds: float | None = Field(description="How long the build took.")
    documents: int | None
    chunks: int | None
    added: int | None = Field(description="Documents new since the previous generation.")
    changed: int | None
    unchanged: int | None
    deleted: int | None
    files_parsed: int | None
    files_carried: int | None = Field(description="Unchanged files carried over unread.")
    embedded: int | None = Field(description="Chunks embedded by this build.")
    reused: int | None = Field(description="Chunks whose vector came from the previous one.")
    skipped: list[FileNote] = Field(description="Files not indexed, each with its reason.")
    kept_previous: list[FileNote] = Field(description="Files that failed and kept their last "
                                                      "good version, with the reason.")
    warnings: list[FileNote]


class Run(BaseModel):
    started_at: str
    finished_at: str
    seconds: float
    exit_code: int
    outcome: str = Field(description="What the exit code means.")
    generation: str | None = Field(description="The generation it published, if any.")
    error: str | None
    skipped: int


class Builds(BaseModel):
    live: str | None = Field(description="The generation CURRENT names.")
    serving: str = Field(description="The generation this server answers from (it follows "
                                     "CURRENT within PKS_RELOAD_SECONDS).")
    builds: list[Build] = Field(description="Kept generations, newest first.")
    runs: list[Run] = Field(description="Recorded `python -m indexer build` runs, newest first, "
                                        "failed ones included.")


def _int(report: dict[str, Any], name: str) -> int | None:
    value = report.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _notes(report: dict[str, Any], name: str, text: str = "reason") -> list[FileNote]:
    items = report.get(name)
    return [FileNote(path=str(i.get("path", "")), reason=str(i.get(text, "")))
            for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def build_of(info: GenerationInfo) -> Build:
    report: dict[str, Any] = dict(info.report)
    seconds = report.get("seconds")
    started = report.get("started_at")
    return Build(
        generation=info.name, live=info.live,
        started_at=started if isinstance(started, str) else None,
        finished_at=info.built_at or None,
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
        documents=info.documents, chunks=info.chunks,
        **{name: _int(report, name) for name in (
            "added", "changed", "unchanged", "deleted", "files_parsed", "files_carried",
            "embedded", "reused")},
        skipped=_notes(report, "skipped"), kept_previous=_notes(report, "kept_previous"),
        warnings=_notes(report, "warnings", "message"))


def run_of(run: BuildRun) -> Run:
    return Run(started_at=run.started_at, finished_at=run.finished_at, seconds=run.seconds,
               exit_code=run.exit_code, outcome=OUTCOMES.get(run.exit_code, "unknown"),
               generation=run.generation, error=run.error, skipped=run.skipped)


def builds(root: Path, serving: str) -> Builds:
    generations = list_generations(root)
    return Builds(live=next((g.name for g in generations if g.live), None), serving=serving,
                  builds=[build_of(g) for g in reversed(generations)],
                  runs=[run_of(r) for r in read_runs(root, RUNS_SHOWN)])


def epoch(text: str | None) -> float | None:
    """Seconds since 1970 of an ISO time (what Prometheus timestamps are), None if unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class RolledBack(BaseModel):
    before: str | None = Field(description="The generation that was live.")
    live: str = Field(description="The generation CURRENT names now.")
    serving: str = Field(description="The generation this server answers from now (the same, "
                                     "unless it could not load it: see the server log).")


def roll_back(root: Path, holder: IndexHolder, audit: Audit, principal: Principal,
              to: str | None) -> RolledBack:
    """What `python -m indexer rollback` does (the same function, under the same build lock),
    then serve the result at once and record who did it in the audit (surface "rollback").
    A running build or an unknown generation: ApiError 409, recorded as refused."""
    asked = to or "the generation before the live one"
    try:
        before, now = rollback(root, to)
    except (LockHeld, RollbackError) as exc:
        audit.record(principal, "rollback", generation=holder.get().generation,
                     query=f"-> {asked}", doc_ids=[], status=409)
        code = "build_running" if isinstance(exc, LockHeld) else "rollback_refused"
        raise ApiError(409, code, str(exc)) from None
    holder.refresh()
    serving = holder.get().generation
    audit.record(principal, "rollback", generation=serving, query=f"{before} -> {now}",
                 doc_ids=[])
    return RolledBack(before=before, live=now, serving=serving.name)
