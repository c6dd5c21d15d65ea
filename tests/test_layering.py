"""The import rule of the two packages (README "Layout"), checked on every module's source and
on a running server:

- `indexer/store/` (the index format) imports nothing from the build pipeline or the API;
- `search_api/` imports from `indexer` only the store package and the embedder;
- the build pipeline never imports `search_api`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployment import ENV, ROOT, free_port

STORE = "indexer.store"
CLUSTER = "indexer.cluster"
EMBEDDER = ("indexer.embed", "indexer.openvino_forward")


def modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved, `from a import b` as a.b too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def inside(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(package: str, allowed: tuple[str, ...], forbidden: tuple[str, ...],
               root: Path = ROOT) -> list[str]:
    """`forbidden` prefixes a package may not import, except those under `allowed`."""
    out = []
    for name, path in modules(package, root).items():
        for target in sorted(imports_of(name, path)):
            if inside(target, *forbidden) and not inside(target, *allowed):
                out.append(f"{path.relative_to(root)} imports {target}")
    return out


def test_the_store_imports_nothing_from_the_pipeline_or_the_api() -> None:
    assert modules("indexer/store")
    assert violations("indexer/store", (STORE,), ("indexer", "search_api")) == []


def test_the_api_imports_only_the_store_and_the_embedder_from_the_indexer() -> None:
    assert violations("search_api", (STORE, *EMBEDDER), ("indexer",)) == []


def test_the_pipeline_never_imports_the_api() -> None:
    assert violations("indexer", (), ("search_api",)) == []


def test_only_the_cluster_package_imports_ray_and_only_the_workers_import_it() -> None:
    """Ray is the cluster build's (indexer/cluster/); the pipeline reaches it through
    indexer/workers.py alone, and only when a build is given a Ray address."""
    for package in ("indexer", "search_api"):
        assert [v for v in violations(package, (), ("ray",))
                if not v.startswith(f"indexer{os.sep}cluster{os.sep}")] == []
    assert [v for v in violations("indexer", (), (CLUSTER,))
            if not v.startswith((f"indexer{os.sep}cluster{os.sep}",
                                 f"indexer{os.sep}workers.py "))] == []
    assert violations("indexer/cluster", (), ("ray",))  # the check sees Ray where it is


def test_the_rule_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The checker itself can fail: forbidden imports, absolute or relative, are reported."""
    store = tmp_path / "indexer/store"
    store.mkdir(parents=True)
    (store / "__init__.py").write_text("")
    (store / "reader.py").write_text("from indexer.chunk import Chunk\nfrom . import vectors\n"
                                     "from ..load import Document\nimport search_api.app\n")
    assert violations("indexer/store", (STORE,), ("indexer", "search_api"), tmp_path) == [
        "indexer/store/reader.py imports indexer.chunk",
        "indexer/store/reader.py imports indexer.chunk.Chunk",
        "indexer/store/reader.py imports indexer.load",
        "indexer/store/reader.py imports indexer.load.Document",
        "indexer/store/reader.py imports search_api.app"]


SERVER = """
import json, sys, threading, time, urllib.request
from search_api.__main__ import main
threading.Thread(target=main, args=(["serve", "--index", sys.argv[1], "--port", sys.argv[2]],),
                 daemon=True).start()
for _ in range(600):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("the server did not start")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        ("indexer", "langchain", "langchain_core", "langchain_text_splitters",
                         "ray"))))
"""


@pytest.mark.slow
def test_a_running_server_has_loaded_no_pipeline_module_no_langchain_and_no_ray(
        access_index: tuple[Path, object]) -> None:
    """`serve` as a process runs it, up to answering /healthz; then its sys.modules."""
    run = subprocess.run([sys.executable, "-c", SERVER, str(access_index[0]), str(free_port())],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert "indexer.store.reader" in loaded and "indexer.embed" in loaded  # it did serve
    assert [m for m in loaded if m.startswith("langchain")] == []
    assert [m for m in loaded if m.split(".")[0] == "ray"] == []  # Ray only with --ray
    assert [m for m in loaded if m != "indexer" and not inside(m, STORE, *EMBEDDER)] == []


LOCAL_BUILD = """
import json, sys
from indexer.__main__ import main
code = main(["build", "--corpus", sys.argv[1], "--index", sys.argv[2], "--quiet"])
print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] == "ray"
                               or m.startswith("indexer.cluster"))]))
"""


@pytest.mark.slow
def test_a_local_build_never_loads_ray(tmp_path: Path) -> None:
    """A build without --ray, as a process runs it, up to publishing; then its sys.modules."""
    from tests.conftest import make_access_corpus

    corpus = make_access_corpus(tmp_path / "corpus")
    run = subprocess.run([sys.executable, "-c", LOCAL_BUILD, str(corpus), str(tmp_path / "i")],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [0, []]
