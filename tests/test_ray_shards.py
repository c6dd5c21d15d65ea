"""Two shards on a local Ray cluster, through the real HTTP API (`serve --ray ADDRESS`): every
partner's dense, lexical and hybrid answers equal the single index's (ids, order, scores within
1e-5); the canary holds; a shard replica killed while queries run is replaced by Ray Serve and
no client request fails (the server retries, bounded).

The cluster is the session's Ray head (tests/conftest.py `ray_head`, 2 CPUs); this process
joins it to watch and kill replicas, and the server is a real process that joins it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from indexer.embed.embedder import Embedder
from indexer.settings import IndexerSettings
from indexer.store.reader import Generation
from tests import sharding
from tests.deployment import RayHead, app_client, serve
from tests.search_api.retrieval.test_shards import poster
from tests.sharding import Pair, Post

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, settings: IndexerSettings,
         embedder: Embedder) -> Pair:
    return sharding.build_pair(tmp_path_factory.mktemp("ray-shards"), settings, embedder)


# A cluster of this machine on loopback only (Ray otherwise binds and dials the machine's
# network address), without token authentication (nothing else can reach it; a real cluster
# keeps it, docs/SCALE.md). Ray reads these when it is imported.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module", autouse=True)
def ray_env() -> Iterator[None]:
    """Set before any test of this module imports Ray."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in RAY_ENV.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def cluster(ray_head: RayHead) -> Iterator[str]:
    import ray
    from ray._private import ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER, "Ray was imported before the test set it up"
    context = ray.init(address=ray_head.address, namespace="pks-test", log_to_driver=False)
    address = str(context.address_info["gcs_address"])
    assert address.startswith("127.0.0.1:"), address
    try:
        yield address
    finally:
        ray.shutdown()  # this process leaves; the head is the session's


def http_poster(url: str) -> Post:
    client = httpx.Client(base_url=url, timeout=120)

    def post(path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return dict(response.json())
    return post


def shard_replicas(generation: str, shard: int) -> set[str]:
    """Names of the live Serve replica actors of one shard's application."""
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("SERVE_REPLICA::") and f"-{generation}-{shard}#" in a["name"]}


def test_two_shards_on_ray_answer_as_the_single_index(pair: Pair, cluster: str) -> None:
    import ray

    with app_client(pair.single, today=lambda: date.today()) as client:
        want = sharding.answers(poster(client), sharding.keys_for(pair.single), sharding.QUERIES)
    keys = sharding.keys_for(pair.sharded)
    generation = Generation.open_live(pair.sharded).name
    env = {"PKS_RAY_ADDRESS": cluster, "PKS_RAY_SHARD_CPUS": "0.5", "PKS_RAY_RETRY_SECONDS": "90",
           **RAY_ENV}
    with serve(pair.sharded, env=env) as url:
        post = http_poster(url)
        sharding.assert_equal(sharding.answers(post, keys, sharding.QUERIES), want)
        sharding.assert_canary(post, keys, pair.sharded)

        # A replica of shard 0 is killed while partners keep asking.
        before = shard_replicas(generation, 0)
        assert len(before) == 1
        outcomes: list[tuple[tuple[str, str, str], Any]] = []
        stop = threading.Event()

        def ask() -> None:
            questions = [(who, mode, q) for (who, mode, q) in want if mode != "lexical"]
            at = 0
            while not stop.is_set() or at < 10:
                who, mode, query = questions[at % len(questions)]
                try:
                    body = post("/v1/search", {"query": query, "top_k": 10, "mode": mode},
                                keys[who])
                    outcomes.append(((who, mode, query), body))
                except Exception as exc:  # recorded: the assertion below counts errors
                    outcomes.append(((who, mode, query), exc))
                at += 1

        asker = threading.Thread(target=ask)
        asker.start()
        while len(outcomes) < 5:
            time.sleep(0.05)
        [victim] = before
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        deadline = time.time() + 120
        while time.time() < deadline and not (shard_replicas(generation, 0) - before):
            time.sleep(0.5)
        replaced = shard_replicas(generation, 0) - before
        stop.set()
        asker.join(timeout=300)
        assert replaced, "Ray Serve did not replace the killed replica"
        errors = [(q, o) for q, o in outcomes if isinstance(o, Exception)]
        assert errors == []
        for question, body in outcomes:
            got = [(r["chunk_id"], r["doc_id"], r["score"]) for r in body["results"]]
            sharding.assert_equal({question: got}, {question: want[question]})


class Flaky:
    """A shard call whose first `failures` answers raise, as a killed replica's do."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self) -> Flaky:
        self.calls += 1
        return self

    def result(self, timeout_s: float) -> str:
        if self.calls <= self.failures:
            raise RuntimeError("ActorDiedError: the replica died")
        return f"answer after {self.calls} calls"


def test_the_server_retries_a_failed_shard_call_within_its_bound() -> None:
    from search_api.cluster.ingress import RayShards

    shards = RayShards([], [], retry_seconds=5)
    assert shards._gather([Flaky(0), Flaky(2)]) == ["answer after 1 calls",
                                                    "answer after 3 calls"]
    assert shards.retries == 2
    never = RayShards([], [], retry_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="ActorDied"):
        never._gather([Flaky(10_000)])
    assert time.monotonic() - started < 5  # bounded: the error comes back, the call stops
