"""The sharded server's life on a Ray cluster, apart from the per-request calls (ingress.py):
joining or starting the cluster, naming and placing its Serve applications, the deadline of
each wait, and deleting what it deployed.

- `--ray local` starts a private cluster (indexer/cluster/join.py: its own temp dir and
  ports, on 127.0.0.1) and stops exactly that one.
- `--ray ADDRESS` joins a cluster that others may use. Its applications are named
  pks-<index>-<token>-<generation>-<shard>, the token drawn per server process (so two servers,
  of one index or of two, never share a name), and it deletes exactly those on exit: never
  Serve's controller (it starts one, without HTTP proxies, if the cluster has none) nor
  another application.
- Before a generation is deployed, the cluster's free CPUs are checked against shards x
  replicas x PKS_RAY_SHARD_CPUS; once deployed, its replicas have PKS_RAY_DEPLOY_TIMEOUT_SECONDS
  to run; either failure deletes what was deployed and raises ClusterUnavailable with one line
  saying what is missing. Deleting waits at most PKS_RAY_SHUTDOWN_TIMEOUT_SECONDS.

Ray is imported here only once join.prepare() has set its environment (a loopback cluster
stays on 127.0.0.1), so this module imports it inside its functions.
"""

from __future__ import annotations

import logging
import re
import secrets
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from indexer.cluster.join import ClusterUnavailable, Joined, join
from indexer.store.reader import Generation
from search_api.cluster.stopping import Stopped
from search_api.settings import ApiSettings

if TYPE_CHECKING:
    from search_api.cluster.ingress import RayShards

log = logging.getLogger(__name__)
NAMESPACE = "pks"
POLL_SECONDS = 0.5


class RayCluster:
    """This server's place on a Ray cluster, and the Serve applications it deployed there."""

    def __init__(self, settings: ApiSettings, joined: Joined, prefix: str) -> None:
        self.settings = settings
        self.joined = joined
        self.prefix = prefix  # every application of this server starts with it
        self.deployed: set[str] = set()
        self.deleting: set[str] = set()  # deleted, perhaps not gone yet
        self._lock = threading.Lock()
        self._closed = False

    @property
    def owned(self) -> bool:
        return self.joined.owned

    @classmethod
    def connect(cls, settings: ApiSettings) -> RayCluster:
        """Join the cluster at PKS_RAY_ADDRESS (or start a private one) and make sure Serve
        runs there. The caller's SIGTERM handler stays (Ray's own would replace it)."""
        address = settings.ray_address
        if address is None:
            raise ValueError("no Ray address")
        main = threading.current_thread() is threading.main_thread()
        handler = signal.getsignal(signal.SIGTERM) if main else None
        try:
            joined = join(address, settings.ray_connect_timeout_seconds, namespace=NAMESPACE)
        except SystemExit as exc:  # Ray's handler, set while ray.init runs, met a SIGTERM
            if exc.code != signal.SIGTERM or handler is None:
                raise
            raise Stopped(signal.SIGTERM) from None
        finally:
            if handler is not None:
                signal.signal(signal.SIGTERM, handler)
        try:
            from ray import serve

            # The API server is the one HTTP ingress: no Serve proxy listens anywhere.
            serve.start(proxy_location="Disabled",
                        **({"http_options": {"host": "127.0.0.1"}} if joined.owned else {}))
        except BaseException:
            joined.leave()
            raise
        cluster = cls(settings, joined, app_prefix(settings))
        log.info("on Ray at %s (%s); this server's Serve applications: %s-*", address,
                 "a private cluster, stopped with the server" if joined.owned else
                 "joined, left running", cluster.prefix)
        return cluster

    def name(self, generation: Generation, shard: int) -> str:
        return f"{self.prefix}-{generation.name}-{shard}"

    def shards_for(self, generation: Generation) -> RayShards:
        """Deploy one application per shard of `generation`; returns when all run."""
        from ray import serve

        from search_api.cluster.ingress import RayShards, shard_deployment
        from search_api.cluster.shard import REPLICA_ENV

        paths = generation.shard_paths()
        self.check_room(len(paths))
        names = [self.name(generation, number) for number in range(len(paths))]
        with self._lock:
            self.deployed.update(names)
        try:
            # A replica is deleted once no request can reach it (a retired generation after a
            # minute, or the server stopped): it need not wait Serve's default 20 s.
            deployment = shard_deployment.options(
                name="shard", num_replicas=self.settings.ray_replicas,
                ray_actor_options={"num_cpus": self.settings.ray_shard_cpus,
                                   "runtime_env": {"env_vars": REPLICA_ENV}},
                graceful_shutdown_wait_loop_s=0.5, graceful_shutdown_timeout_s=5)
            listen = "127.0.0.1" if self.owned else self.settings.ray_serve_host
            handles = serve.run_many(
                [serve.RunTarget(deployment.bind(str(path.resolve()), listen), name=name,
                                 route_prefix=None) for name, path in zip(names, paths,
                                                                          strict=True)],
                wait_for_ingress_deployment_creation=False,
                wait_for_applications_running=False)
            log.info("generation %s: deploying %d shards on Ray, %d replica(s) of %g CPU "
                     "each", generation.name, len(names), self.settings.ray_replicas,
                     self.settings.ray_shard_cpus)
            self.wait_running(names)
        except BaseException:
            self.delete(names, wait=True)
            raise
        log.info("generation %s: %d shards running on Ray", generation.name, len(names))
        # Serve dials a replica's gRPC port at its node's Ray address: where PKS_RAY_SERVE_HOST
        # moved the port elsewhere, the calls go through Ray's actor calls instead.
        return RayShards(names, handles, self.settings.ray_retry_seconds,
                         release=lambda: self.delete(names, wait=False),
                         by_grpc=listen is None or self.owned, generation=generation)

    def check_room(self, shards: int) -> None:
        """Refuse at once what the cluster has no CPUs for: Serve would wait forever."""
        import ray

        s = self.settings
        need = shards * s.ray_replicas * s.ray_shard_cpus
        free = float(ray.available_resources().get("CPU", 0.0))
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        total = sum(float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes)
        widest = max((float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes), default=0)
        if widest < s.ray_shard_cpus:
            raise ClusterUnavailable(
                f"no node of the Ray cluster at {s.ray_address} has {s.ray_shard_cpus:g} CPUs "
                f"for one shard replica (the largest has {widest:g}): lower PKS_RAY_SHARD_CPUS "
                "or add a larger node")
        if need > free + 1e-6:
            raise ClusterUnavailable(
                f"the Ray cluster at {s.ray_address} has {free:g} free CPUs ({total:g} in all, "
                f"{len(nodes)} node(s)); {shards} shards x {s.ray_replicas} replicas x "
                f"{s.ray_shard_cpus:g} CPU (PKS_RAY_SHARD_CPUS) need {need:g}: add nodes, or "
                "lower --replicas or PKS_RAY_SHARD_CPUS (docs/CLUSTER.md)")

    def wait_running(self, names: list[str]) -> None:
        """Until every application runs; a failed one, or the deadline, raises."""
        from ray import serve

        limit = self.settings.ray_deploy_timeout_seconds
        deadline = time.monotonic() + limit
        while True:
            apps = serve.status().applications
            failed = [n for n in names if n in apps and apps[n].status == "DEPLOY_FAILED"]
            if failed:
                raise ClusterUnavailable(f"the shard application {failed[0]} failed to start "
                                         f"on Ray: {_message(apps[failed[0]])}")
            if all(n in apps and apps[n].status == "RUNNING" for n in names):
                return
            if time.monotonic() > deadline:
                waiting = [n for n in names if n not in apps or apps[n].status != "RUNNING"]
                raise ClusterUnavailable(
                    f"{len(waiting)} of {len(names)} shard applications were not running "
                    f"after {limit:g} s (PKS_RAY_DEPLOY_TIMEOUT_SECONDS): "
                    + (_message(apps[waiting[0]]) if waiting[0] in apps else "not created"))
            time.sleep(POLL_SECONDS)

    def delete(self, names: list[str], wait: bool) -> None:
        """Delete these applications of this server; with `wait`, until they are gone or
        PKS_RAY_SHUTDOWN_TIMEOUT_SECONDS have passed (Serve finishes in the background)."""
        from ray import serve

        with self._lock:
            mine = [n for n in names if n in self.deployed]
            self.deployed.difference_update(mine)
            self.deleting.update(mine)
        for name in mine:
            try:
                serve.delete(name, _blocking=False)
            except Exception as exc:  # the cluster may be going away too
                log.warning("could not delete Serve application %s: %s", name, exc)
        if wait:
            self._wait_gone(names)

    def _wait_gone(self, names: list[str]) -> None:
        from ray import serve

        deadline = time.monotonic() + self.settings.ray_shutdown_timeout_seconds
        while names:
            left = [n for n in names if n in serve.status().applications]
            if not left:
                with self._lock:
                    self.deleting.difference_update(names)
                return
            if time.monotonic() > deadline:
                log.warning("Serve applications still being deleted after %g s "
                            "(PKS_RAY_SHUTDOWN_TIMEOUT_SECONDS): %s",
                            self.settings.ray_shutdown_timeout_seconds, ", ".join(left))
                return
            time.sleep(POLL_SECONDS)

    def close(self) -> None:
        """Delete this server's applications and wait for them to go (a private cluster goes
        whole), then leave. Once: the app's shutdown and the command both close."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if not self.owned:
                with self._lock:
                    left = sorted(self.deployed)
                self.delete(left, wait=False)
                with self._lock:
                    pending = sorted(self.deleting)
                self._wait_gone(pending)
                log.info("deleted this server's Serve applications (%d)", len(pending))
        finally:
            self.joined.leave()
            log.info("left the Ray cluster at %s%s", self.joined.address,
                     " and stopped it" if self.owned else "")


def app_prefix(settings: ApiSettings) -> str:
    """pks-<index directory's name>-<token>: the index in the name for whoever reads `serve
    status`, the token so that no other server's names are ever this one's."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", settings.index.resolve().name).strip("-")[:24]
    return f"pks-{slug or 'index'}-{secrets.token_hex(3)}"


def _message(app: Any) -> str:
    """One line from what Serve says of an application that is not running: its deployment's
    message first (the application's is generic), the exception of a replica's traceback."""
    for text in [*(d.message for d in app.deployments.values()), app.message]:
        lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1] if "Traceback" in str(text) else lines[0]
    return str(getattr(app.status, "value", app.status))
