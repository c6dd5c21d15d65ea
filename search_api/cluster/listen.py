"""Where a shard replica listens (issue 22's "Ray Serve binds to loopback for --ray local").

Ray Serve 2.60 opens each replica's inter-deployment gRPC server on every interface ("[::]:0"
in ray/serve/_private/replica.py; no setting changes it). A shard replica's constructor calls
`on_node_address()` first, and that server then listens on the replica's node's own Ray
address instead: 127.0.0.1 on the private cluster of `--ray local`, and on a cluster joined by
address the interface each node was started with (`ray start --node-ip-address`, the
cluster's private network; docs/SCALE.md). The API server reaches replicas through Ray's actor
calls, which already use that address; the gRPC port serves only Serve's optional gRPC
transport between deployments. tests/test_ray_foreign.py checks that `--ray local` listens on
127.0.0.1 alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_node_address() -> None:
    """Make this replica's Serve gRPC server listen on its node's Ray address (once per
    process; the replica module reads the helper when its constructor has returned)."""
    import ray
    from ray.serve._private import replica

    add_port: Callable[[Any, str], int] = replica.add_port_to_grpc_server
    if getattr(add_port, "on_node_address", False):
        return
    node = ray.util.get_node_ip_address()
    host = f"[{node}]" if ":" in node else node

    def add_port_on_node(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = f"{host}:{address.rpartition(':')[2]}"
        return add_port(server, address)

    add_port_on_node.on_node_address = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_node  # type: ignore[attr-defined]
