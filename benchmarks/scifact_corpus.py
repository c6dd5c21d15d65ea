"""Lay out BEIR SciFact (from ../shared/eval) as a partner corpus with partners of 1/10/50 %.

The corpus file is split into 100 JSONL shards in a scratch directory (never in the repo: the
data is CC BY-NC and 8 MB); access rules give partner p1 one shard, p10 ten, p50 fifty.
"""

from __future__ import annotations

import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval" / "scifact"
SHARDS = 100
MANIFEST = """\
partners: [p1, p10, p50]
rules:
  - match: "shard-00.jsonl"
    allow: [p1, p10, p50]
  - match: "shard-0?.jsonl"
    allow: [p10, p50]
  - match: "shard-[1-4]?.jsonl"
    allow: [p50]
# shards 50-99: no rule, admins only
"""
SHARE = {"p1": 0.01, "p10": 0.10, "p50": 0.50}


def make_corpus(dest: Path, source: Path = SHARED / "corpus.jsonl") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "access.yaml").write_text(MANIFEST)
    lines = source.read_text(encoding="utf-8").splitlines()
    for shard in range(SHARDS):
        (dest / f"shard-{shard:02d}.jsonl").write_text(
            "".join(line + "\n" for i, line in enumerate(lines) if i % SHARDS == shard))
    return dest


def doc_shard(source: Path = SHARED / "corpus.jsonl") -> dict[str, int]:
    """doc id -> shard number, to know which partner may see which relevant document."""
    out = {}
    for i, line in enumerate(source.read_text(encoding="utf-8").splitlines()):
        out[str(json.loads(line)["_id"])] = i % SHARDS
    return out


def load_queries(split: str = "test",
                 root: Path = SHARED) -> tuple[dict[str, str], dict[str, set[str]]]:
    queries = {}
    for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        queries[str(record["_id"])] = record["text"]
    qrels: dict[str, set[str]] = {}
    for line in (root / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        qid, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(doc_id)
    return {q: queries[q] for q in qrels}, qrels


def make_partner_corpus(dest: Path, partners: int = SHARDS,
                        source: Path = SHARED / "corpus.jsonl") -> Path:
    """SciFact split among `partners` partners p00, p01, ...: each sees its own shard only."""
    make_corpus(dest, source)
    names = [f"p{i:02d}" for i in range(partners)]
    rules = "".join(f'  - match: "shard-{i % SHARDS:02d}.jsonl"\n    allow: [{name}]\n'
                    for i, name in enumerate(names))
    (dest / "access.yaml").write_text(f"partners: [{', '.join(names)}]\nrules:\n{rules}")
    return dest
