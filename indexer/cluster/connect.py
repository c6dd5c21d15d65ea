"""A build's workers on a Ray cluster: a pool of parse actors and a pool of embedding actors,
on the cluster joined (or, for `local`, started here and stopped when the build ends) through
join.py, where every wait has a limit: an unreachable or silent address is an error naming it,
within PKS_RAY_CONNECT_TIMEOUT_SECONDS, before anything is loaded or written.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.cluster.join import ClusterUnavailable, join
from indexer.settings import IndexerSettings
from indexer.workers import Stage, Workers, WorkersUnavailable

log = logging.getLogger(__name__)


@contextmanager
def cluster_workers(settings: IndexerSettings) -> Iterator[Workers]:
    """The cluster's workers for the length of one build; disconnects (or stops `local`)."""
    address = settings.ray_address or "local"
    try:
        joined = join(address, settings.ray_connect_timeout_seconds)
    except ImportError as exc:
        raise WorkersUnavailable("a build on Ray needs the 'cluster' extra: pip install -e "
                                 "'.[cluster]' (docs/CLUSTER.md)") from exc
    except ClusterUnavailable as exc:
        raise WorkersUnavailable(str(exc)) from exc
    try:
        yield _workers(settings, address)
    finally:
        joined.leave()


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
    done: dict[str, Counter[str]] = {"parse": Counter(), "embed": Counter()}
    return Workers(ClusterParsing(parse, settings.parse_timeout_seconds, done["parse"]), parse,
                   embed, lambda embedder: ClusterEmbedding(settings, embed, probe, embedder.dim,
                                                            done["embed"]), cluster, done)

