"""Shared fixtures: the real model, and a small real corpus with every kind of access rule.

The model is real everywhere, and loaded (and compiled by OpenVINO) once per configuration per
session: builds run in process reuse it, and so does every app a test assembles in process.
Processes a test starts (`serve`, a build it kills) load their own, as in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Ray clusters the tests start (and builds that join them in this process) stay on 127.0.0.1:
# by default Ray swaps a loopback address for the machine's own. Read when Ray is imported.
# Their token authentication is off: Ray would share one token file in $HOME between test
# clusters and the machine's other Ray users, and cache it per process.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import indexer.build  # noqa: E402
import search_api.retrieval.live  # noqa: E402
from indexer.build import BuildReport, build  # noqa: E402
from indexer.embed.embedder import Embedder, embedder_for  # noqa: E402
from indexer.settings import IndexerSettings  # noqa: E402
from tests.browser import browser, page  # noqa: E402, F401 (the page tests' fixtures)
from tests.deployment import RayHead  # noqa: E402
from tests.environment import check_needs  # noqa: E402
from tests.factory import write, write_jsonl, write_pdf  # noqa: E402


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_needs(item)  # data and programs a test needs: a skip locally, a failure under CI


# session fixture -> xdist group. The served owned index is one server for the fuzzers and the
# streams test: built once, and the fuzzers never run beside the test that times searches.
SHARED_SERVERS = {"ray_head": "ray", "postgres": "postgres", "owned_server": "owned"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (`make test` runs -n 2)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Which worker runs what under `pytest -n N --dist loadgroup`: a module's tests stay
    together (its module fixtures are built once), and every module that uses the session's Ray
    cluster, PostgreSQL server or served owned index runs in one worker, so each is started once
    per run."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    for module, tests in modules.items():
        used = {name for test in tests for name in getattr(test, "fixturenames", ())}
        group = next((group for fixture, group in SHARED_SERVERS.items() if fixture in used),
                     module)
        for test in tests:
            test.add_marker(pytest.mark.xdist_group(group))

MANIFEST = """\
partners: [alpha, beta, gamma, delta]
rules:
  - match: "shared/**"
    allow: "*"
  - match: "alpha/**"
    allow: [alpha]
  - match: "beta/**"
    allow: [beta]
  - match: "joint/**"
    allow: [alpha, beta]
    until: 2099-12-31
  - match: "gamma/**"
    allow: [gamma]
    until: 2020-01-01
  - match: "drafts/**"
    allow: []
"""

TEXTS = {
    "shared/overview.md": (
        "# Programme overview\n\nThe open innovation programme brings four partners together to "
        "build better batteries and sensors. Steering committee meetings happen every quarter "
        "in Rotterdam, and every partner presents progress on its work package.\n\n"
        "Shared results are published on the programme wiki after a two week review period."
    ),
    "alpha/electrolyte.txt": (
        "Project KESTREL: the sulfide solid electrolyte batch 7 reached an ionic conductivity of "
        "14.2 mS/cm at 25 degrees Celsius after annealing at 550 degrees for six hours.\n\n"
        "Moisture exposure above 40 ppm degraded the conductivity by a third within two days, so "
        "the glovebox protocol was tightened to 1 ppm water."
    ),
    "beta/sensors.md": (
        "# Fibre sensor calibration\n\nThe fibre Bragg grating strain sensors drifted by 3.1 "
        "microstrain per week in the salt spray chamber. Codename OSPREY recalibration uses a "
        "reference grating bonded with a polyimide adhesive.\n\nTemperature cross-sensitivity "
        "was 10.4 picometres per kelvin."
    ),
    "joint/integration.md": (
        "# Cell and sensor integration\n\nAlpha and Beta embed strain sensors inside pouch cells "
        "to detect swelling early. The HERON prototype detected 0.2 mm swelling during fast "
        "charging at 3C."
    ),
    "gamma/recycling.txt": (
        "Black mass recycling study: hydrometallurgical leaching recovered 96 percent of the "
        "cobalt and 91 percent of the lithium from shredded end-of-life cells. Codename PELICAN."
    ),
    "internal/board.md": (
        "# Board notes\n\nThe board considers acquiring one of the partners in 2027. The budget "
        "for the acquisition is 40 million euros, codename ALBATROSS."
    ),
    "drafts/plan.txt": (
        "Draft plan: cut the sensor work package by half if the field trial in Norway fails. "
        "Codename CORMORANT."
    ),
}
PDF_PAGES = [
    "Pilot line report page one. The dry room of the pilot line keeps a dew point of minus "
    "forty degrees, and the coating machine runs at two metres per minute.",
    "Pilot line report page two. Cell formation takes eighteen hours and the first cycle "
    "efficiency reached 89 percent on the KESTREL electrolyte cells.",
]
GLOSSARY = [
    {"_id": "gloss-soc", "title": "State of charge",
     "text": "State of charge is the remaining capacity of a battery as a share of its full "
             "capacity, estimated with coulomb counting and a Kalman filter."},
    {"_id": "gloss-fbg", "title": "Fibre Bragg grating",
     "text": "A fibre Bragg grating reflects one wavelength of light; strain or heat shift it."},
]

# Which documents each partner may see (the test's own statement of the rules above).
SHARED = {"shared/overview.md", "gloss-soc", "gloss-fbg"}
VISIBLE = {
    "alpha": SHARED | {"alpha/electrolyte.txt", "alpha/pilot-line.pdf", "joint/integration.md"},
    "beta": SHARED | {"beta/sensors.md", "joint/integration.md"},
    "gamma": set(SHARED),
    "delta": set(SHARED),
}
ALL_DOCS = set(TEXTS) | {"alpha/pilot-line.pdf"} | SHARED


def make_access_corpus(root: Path) -> Path:
    write(root / "access.yaml", MANIFEST)
    for rel, text in TEXTS.items():
        write(root / rel, text)
    write_pdf(root / "alpha/pilot-line.pdf", PDF_PAGES, title="Pilot line report")
    write_jsonl(root / "shared/glossary.jsonl", GLOSSARY)
    return root


_MODELS: dict[tuple[object, ...], Embedder] = {}


def shared_embedder(*args: object, **kwargs: object) -> Embedder:
    """`Embedder(...)`, loaded once per distinct configuration in this test session."""
    key = (args, tuple(sorted(kwargs.items())))
    if key not in _MODELS:
        _MODELS[key] = Embedder(*args, **kwargs)  # type: ignore[arg-type]
    return _MODELS[key]


def shared_embedder_for(settings: IndexerSettings) -> Embedder:
    return shared_embedder(settings.model, settings.batch_size, settings.torch_threads,
                           settings.embed_backend, settings.embed_precision)


@pytest.fixture(scope="session", autouse=True)
def one_model_per_configuration() -> Iterator[None]:
    """In-process builds (indexer.build) and in-process apps (search_api.retrieval.live) take their
    model from the session's; a model of another configuration is still loaded for real."""
    assert embedder_for.__module__ == "indexer.embed.embedder"
    patch = pytest.MonkeyPatch()
    patch.setattr(indexer.build, "embedder_for", shared_embedder_for)
    patch.setattr(search_api.retrieval.live, "Embedder", shared_embedder)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def settings() -> IndexerSettings:
    return IndexerSettings(progress=False, chunk_tokens=64, chunk_overlap=8)


@pytest.fixture(scope="session")
def embedder(settings: IndexerSettings) -> Embedder:
    return shared_embedder_for(settings)


@pytest.fixture(scope="session")
def owned_server(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
                 embedder: Embedder) -> Iterator[dict[str, object]]:
    """`serve` on loopback over the owned access corpus, with a key of partner alpha and an admin
    key, no rate limits, and one search already in the audit: what the fuzz tests send arbitrary
    requests to (tests/test_fuzz.py within the schema, tests/test_bad_input.py outside it)."""
    from tests.deployment import create_key, make_owned_corpus, serve

    base = tmp_path_factory.mktemp("served")
    corpus, index = make_owned_corpus(base / "corpus"), base / "index"
    build(corpus, index, settings, embedder)
    keys = {"alpha": create_key(index, "alpha", "fuzzing partner"),
            "admin": create_key(index, None, "fuzzing admin")}
    env = {"PKS_RELOAD_SECONDS": "0", "PKS_RATE_LIMIT_BURST": "100000",
           "PKS_AUTH_FAILURES_PER_MINUTE": "0"}
    with serve(index, env) as url:
        # Seed the audit so that the owners' view has something to (not) show.
        httpx.post(f"{url}/v1/search", json={"query": "KESTREL electrolyte", "top_k": 5},
                   headers={"Authorization": f"Bearer {keys['alpha']}"}, timeout=30)
        yield {"url": url, "keys": keys, "index": index}


@pytest.fixture(scope="session")
def access_index(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
                 embedder: Embedder) -> tuple[Path, BuildReport]:
    """A published index of the access corpus, built once per test session."""
    base = tmp_path_factory.mktemp("access")
    corpus = make_access_corpus(base / "corpus")
    index = base / "index"
    report = build(corpus, index, settings, embedder)
    return index, report


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server for the session (tests/postgres.py); its superuser's URL."""
    from tests.environment import require
    from tests.postgres import INSTALL, bindir, postgres_server

    require(bindir() is not None, "PostgreSQL", INSTALL)
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """One real Ray head on loopback (2 CPUs) for every test that uses a cluster it did not
    start: the cluster builds and the sharded server (tests/deployment.py `ray_cluster`)."""
    from tests.deployment import ray_cluster

    with ray_cluster(cpus=2) as head:
        yield head


@pytest.fixture()
def database_url(postgres: str) -> str:
    """A fresh, empty database on the session's PostgreSQL (PKS_DATABASE_URL of a test)."""
    from tests.postgres import new_database

    return new_database(postgres)


@pytest.fixture(scope="session")
def foreign_ray() -> Iterator[object]:
    """A two-node Ray cluster on loopback that this project did not start, running an
    application of its own (tests/foreign_ray.py): what `--ray` meets on an operator's shared
    cluster. One per session; everything it started is stopped at the end."""
    from tests.foreign_ray import foreign_cluster

    with foreign_cluster() as cluster:
        yield cluster
