"""Joining a Ray cluster for one build (or starting one on this machine), and the workers it
offers: a pool of parse actors and a pool of embedding actors.

An address is first tried with a plain TCP connection, because Ray itself keeps retrying a head
that does not answer for many minutes; an unreachable cluster is an error naming the address,
before anything is loaded or written. `local` starts a cluster of this machine alone, bound to
loopback (nothing listens on the network), and stops it when the build ends.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.settings import IndexerSettings
from indexer.workers import Stage, Workers, WorkersUnavailable

log = logging.getLogger(__name__)
# Ray's switch that keeps a cluster on 127.0.0.1 (its default publishes the machine's address).
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def cluster_workers(settings: IndexerSettings) -> Iterator[Workers]:
    """The cluster's workers for the length of one build; disconnects (or stops `local`)."""
    address = settings.ray_address or "local"
    if address == "local":
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    else:
        _check_reachable(address, settings.ray_connect_timeout_seconds)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a nightly job reports to no one
    try:
        import ray
    except ImportError as exc:
        raise WorkersUnavailable("a build on Ray needs the 'cluster' extra: pip install -e "
                                 "'.[cluster]' (docs/CLUSTER.md)") from exc

    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # Ray raises several kinds; the cause says why (e.g. a token)
        why = f"{exc}" + (f" ({exc.__cause__})" if exc.__cause__ else "")
        raise WorkersUnavailable(f"cannot join the Ray cluster at {address}: "
                                 f"{type(exc).__name__}: {why}") from exc
    try:
        yield _workers(settings, address)
    finally:
        ray.shutdown()


def _workers(settings: IndexerSettings, address: str) -> Workers:
    import ray

    from indexer.cluster.embed import ClusterEmbedding, start_probe
    from indexer.cluster.parse import ClusterParsing

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), int(total.get("GPU", 0))
    if gpus:  # an actor asks for a GPU when the cluster has one
        per_actor, actors = {"CPU": 1.0, "GPU": 1.0}, settings.ray_actors or gpus
    else:
        widest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=0)
        if widest < settings.ray_actor_cpus:
            raise WorkersUnavailable(
                f"no node of the Ray cluster at {address} has {settings.ray_actor_cpus} CPUs "
                f"for an embedding actor (the largest has {widest:g}); lower "
                "PKS_RAY_ACTOR_CPUS")
        per_actor = {"CPU": float(settings.ray_actor_cpus)}
        actors = settings.ray_actors or max(1, int(cpus // settings.ray_actor_cpus))
    parse = Stage("ray", max(1, int(cpus)), "actor", {"CPU": 1.0})
    embed = Stage("ray", actors, "actor", per_actor)
    cluster: dict[str, object] = {"address": address, "nodes": len(nodes), "cpus": cpus,
                                  "gpus": gpus}
    log.info("Ray cluster at %s: %d node(s), %g CPUs, %d GPUs; %s, %s", address, len(nodes),
             cpus, gpus, parse.label("parsing"), embed.label("embedding"))
    probe = start_probe(settings, embed)
    return Workers(ClusterParsing(parse, settings.parse_timeout_seconds), parse, embed,
                   lambda embedder: ClusterEmbedding(settings, embed, probe, embedder.dim),
                   cluster)


def _check_reachable(address: str, timeout: float) -> None:
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise WorkersUnavailable(
            f"cannot reach the Ray cluster at {address}: {reason}. Start it (`ray start "
            "--head`, see docs/CLUSTER.md), or correct --ray / PKS_RAY_ADDRESS") from exc
