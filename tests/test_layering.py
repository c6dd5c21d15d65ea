"""The import rules of the two packages (docs/ARCHITECTURE.md), checked on every module's source
and on a running server:

- `indexer/store/` (the index format) imports nothing from the build pipeline or the API;
- `search_api/` imports from `indexer` only the store package and the embedder, and its
  cluster back-end the one module that joins a Ray cluster (indexer/cluster/join.py);
- the build pipeline never imports `search_api`;
- every sub-package says in its docstring what it may import ("May import: ..."), and imports
  nothing else of its package;
- no import circle, lazy imports included;
- a short top level: at most 10 modules in `search_api/`, 12 in `indexer/`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployment import ENV, ROOT, free_port

STORE = "indexer.store"
CLUSTER = "indexer.cluster"
JOIN = "indexer.cluster.join"  # joining a Ray cluster: the build's and the sharded server's
EMBEDDER = ("indexer.embed",)
TOP_LEVEL_LIMIT = {"search_api": 10, "indexer": 12}


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
    assert violations("search_api", (STORE, *EMBEDDER, JOIN), ("indexer",)) == []
    assert [v for v in violations("search_api", (), (JOIN,))
            if not v.startswith(f"search_api{os.sep}cluster{os.sep}")] == []


def test_the_pipeline_never_imports_the_api() -> None:
    assert violations("indexer", (), ("search_api",)) == []


def test_only_the_cluster_package_imports_ray_and_only_the_build_chooses_it() -> None:
    """Ray is the cluster build's (indexer/cluster/) and the sharded server's
    (search_api/cluster/); the pipeline reaches it through indexer/build.py alone, where the
    build is assembled, and only when a build is given a Ray address: the local workers never
    import it."""
    for package in ("indexer", "search_api"):
        assert [v for v in violations(package, (), ("ray",))
                if not v.startswith((f"indexer{os.sep}cluster{os.sep}",
                                     f"search_api{os.sep}cluster{os.sep}"))] == []
    assert [v for v in violations("indexer", (), (CLUSTER,))
            if not v.startswith((f"indexer{os.sep}cluster{os.sep}",
                                 f"indexer{os.sep}build.py "))] == []
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



def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of both packages it imports (a name imported from a module counts
    as that module; a package's own `__init__` as the package)."""
    found = {**modules("indexer", root), **modules("search_api", root)}
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        graph[name] = {target if target in found else target.rpartition(".")[0]
                       for target in imports_of(name, path)} & set(found) - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_is_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle(tmp_path: Path) -> None:
    for name, text in {"indexer/__init__.py": "", "search_api/__init__.py": "",
                       "indexer/a.py": "def f():\n    from indexer.b import g\n",
                       "indexer/b.py": "from indexer.c import h\n",
                       "indexer/c.py": "import indexer.a\n", "indexer/d.py": "import indexer.a\n"
                       }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert circles(import_graph(tmp_path)) == [["indexer.a", "indexer.b", "indexer.c"]]


RULE = re.compile(r"^May import: (.+)$", re.M)


def rules(package: str, root: Path = ROOT) -> dict[str, tuple[str, ...]]:
    """Sub-package -> what its docstring says it may import, as dotted prefixes."""
    found = {}
    for init in sorted((root / package).rglob("__init__.py")):
        if init.parent == root / package:
            continue
        name = ".".join(init.parent.relative_to(root).parts)
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(root)} has no docstring saying what it holds"
        rule = RULE.search(doc)
        if rule is None:
            continue  # governed by the package above it (e.g. search_api/http/routes/)
        allowed = [] if rule[1].startswith("nothing") else [
            f"{package}.{item.strip()}" for item in rule[1].split(",")]
        found[name] = tuple(allowed)
    return found


def rule_breaches(package: str, root: Path = ROOT) -> list[str]:
    """Imports of `package`'s own modules that the nearest rule above the importer forbids."""
    table = rules(package, root)
    out = []
    for name, path in modules(package, root).items():
        owner = max((p for p in table if inside(name, p)), key=len, default=None)
        if owner is None:
            continue
        for target in sorted(imports_of(name, path)):
            if inside(target, package) and not inside(target, owner, *table[owner]):
                out.append(f"{path.relative_to(root)} imports {target}")
    return out


@pytest.mark.parametrize("package", ["search_api", "indexer"])
def test_every_sub_package_says_what_it_may_import_and_keeps_to_it(package: str) -> None:
    assert rules(package), "no sub-package states a rule"
    assert rule_breaches(package) == []


def test_a_rule_is_held(tmp_path: Path) -> None:
    """The rule check can fail: an import above a sub-package's line is reported."""
    for name, text in {
            "search_api/__init__.py": "", "search_api/errors.py": "",
            "search_api/identity/__init__.py": '"""Who.\n\nMay import: errors\n"""\n',
            "search_api/identity/keys.py": "from search_api.errors import X\n"
                                           "from search_api.identity.principal import P\n"
                                           "from search_api.http.deps import D\n",
            "search_api/http/__init__.py": '"""The app.\n\nMay import: identity\n"""\n',
            "search_api/http/routes/__init__.py": '"""Routes."""\n',
            "search_api/http/routes/me.py": "from search_api.identity.keys import K\n"
                                            "from search_api.state import S\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert rule_breaches("search_api", tmp_path) == [
        "search_api/http/routes/me.py imports search_api.state",
        "search_api/http/routes/me.py imports search_api.state.S",
        "search_api/identity/keys.py imports search_api.http.deps",
        "search_api/identity/keys.py imports search_api.http.deps.D"]


def test_the_leaves_of_the_api_import_nothing_of_it() -> None:
    """settings.py and errors.py sit below every sub-package."""
    found = modules("search_api")
    for leaf in ("search_api.settings", "search_api.errors"):
        assert [t for t in imports_of(leaf, found[leaf]) if inside(t, "search_api")] == []


@pytest.mark.parametrize("package", sorted(TOP_LEVEL_LIMIT))
def test_the_top_level_is_short(package: str) -> None:
    top = sorted(p.name for p in (ROOT / package).glob("*.py"))
    assert len(top) <= TOP_LEVEL_LIMIT[package], top

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
    assert "indexer.store.reader" in loaded and "indexer.embed.embedder" in loaded  # it did serve
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
