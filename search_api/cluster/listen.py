"""Where a shard replica's Serve port listens (issue 22: Ray Serve on loopback for `--ray local`
and on a configured interface otherwise).

Ray Serve 2.60 opens each replica's inter-deployment gRPC server on every interface ("[::]:0"
in ray/serve/_private/replica.py; no setting changes it). A shard replica's constructor calls
`serve_port_on(host)` first, and that server then listens on `host` instead: 127.0.0.1 on the
private cluster of `--ray local`; on a cluster joined by address PKS_RAY_SERVE_HOST, by default
the replica's node's own Ray address (the `--node-ip-address` the node was started with). The
API server calls replicas through Ray's actor calls, not this port; it serves Serve's optional
gRPC transport between deployments. tests/test_ray_foreign.py checks both cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def serve_port_on(host: str | None) -> None:
    """Make this replica's Serve gRPC server listen on `host` (None: its node's Ray address).
    Once per process: Serve's replica module looks the helper up after the constructor."""
    import ray
    from ray.serve._private import replica

    add_port: Callable[[Any, str], int] = replica.add_port_to_grpc_server
    if getattr(add_port, "listens_on", None) is not None:
        return
    host = host or ray.util.get_node_ip_address()
    bind = f"[{host}]" if ":" in host else host

    def add_port_on_host(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = f"{bind}:{address.rpartition(':')[2]}"
        return add_port(server, address)

    add_port_on_host.listens_on = host  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_host  # type: ignore[attr-defined]
