"""Joining a Ray cluster, or starting a private one, with every wait bounded: the build
(indexer/cluster/connect.py) and the sharded server (search_api/cluster/lifecycle.py) both
come through here.

Ray's own connect retries a head that does not answer for many minutes, and with its defaults
it rewrites a loopback address to this machine's network address, where a loopback-only head
never answers. So an address is checked first, each step within the connect timeout: a TCP
connection; Ray's handshake, a call to the head's GCS for its nodes (which also tests the
cluster's token); a node of that cluster on this machine, through which a driver joins. Only
then does `ray.init` run, in a thread that is given up after the same timeout.

`local` starts a private cluster: its own temp dir (never Ray's shared /tmp/ray, whose "current
cluster" file any `ray.init()` without an address joins), ports Ray picks free, every process
bound to 127.0.0.1. `Joined.leave()` stops exactly that cluster, or only disconnects.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# Ray's switch that keeps a cluster on 127.0.0.1 (its default publishes the machine's address,
# and rewrites a loopback address given to it). Read when Ray is imported.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOCAL_START_SECONDS = 120.0  # Ray's head processes on a loaded machine (its own limits apply)


class ClusterUnavailable(Exception):
    """The cluster could not be joined or started within its limit; the message is one line
    that names what is missing."""


@dataclass(frozen=True)
class Node:
    """A live node of the cluster as its head advertises it."""

    id: str  # hex
    address: str  # the node's --node-ip-address
    head: bool
    cpus: float


@dataclass
class Joined:
    """This process's place on a cluster: joined at `address`, or a private one it owns."""

    address: str  # as given: host:port, ray://host:port or "local"
    owned: bool  # a private cluster started here, stopped by leave()
    temp_dir: Path | None = None

    def leave(self) -> None:
        """Disconnect; an owned cluster's processes stop and its temp dir goes."""
        import ray

        try:
            ray.shutdown()
        finally:
            if self.temp_dir is not None:
                shutil.rmtree(self.temp_dir, ignore_errors=True)


def this_node() -> str:
    """The node this Ray worker runs on, as reports name it: its address and the start of its
    id (nodes of one host share the address)."""
    import ray

    context = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()} ({context.get_node_id()[:8]})"


def host_of(address: str) -> str:
    return address.split("://", 1)[-1].rpartition(":")[0].strip("[]")


def prepare(address: str) -> None:
    """Ray's environment for `address`, before Ray is imported: a private or loopback cluster
    stays on 127.0.0.1; no usage report from a nightly job."""
    if address == "local" or host_of(address) in LOOPBACK:
        os.environ[LOOPBACK_ONLY] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def join(address: str, timeout: float, *, namespace: str | None = None) -> Joined:
    """Join the cluster at `address` (or start a private one for `local`) within `timeout`
    seconds a step; raises ClusterUnavailable, or ImportError without the `cluster` extra."""
    prepare(address)
    import ray  # noqa: F401 (ImportError: the caller names the extra)

    if address == "local":
        return _start_private(namespace)
    nodes: list[Node] = []
    if "://" not in address:  # Ray Client (ray://) has its own protocol: TCP is checked
        nodes = handshake(address, timeout)
        local_node(address, nodes)
    else:
        _check_tcp(address, timeout)
    _connect(address, timeout, nodes, namespace=namespace)
    return Joined(address, owned=False)


def _start_private(namespace: str | None) -> Joined:
    """A cluster of this machine alone, in the calling (main) thread: the processes Ray starts
    die with the thread that started them."""
    import ray

    temp = Path(tempfile.mkdtemp(prefix="pks-ray-", dir="/tmp"))  # Ray's socket paths are short
    try:
        ray.init(address="local", _temp_dir=str(temp), _node_ip_address="127.0.0.1",
                 include_dashboard=False, namespace=namespace, log_to_driver=False,
                 logging_level=logging.WARNING)
    except BaseException as exc:  # a signal too: what was started stops, its folder goes
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, Exception):
            raise ClusterUnavailable(f"cannot start a local Ray cluster: {_why(exc)}") from exc
        raise
    return Joined("local", owned=True, temp_dir=temp)


def _check_tcp(address: str, timeout: float) -> None:
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ClusterUnavailable(
            f"cannot reach the Ray cluster at {address}: {reason}. Start it (`ray start "
            "--head`, see docs/CLUSTER.md), or correct --ray / PKS_RAY_ADDRESS") from exc


def handshake(address: str, timeout: float) -> list[Node]:
    """The cluster's live nodes, from its head's GCS over Ray's own gRPC channel (its token
    and TLS settings included): a port that accepts connections but is no Ray head, or a
    refused token, fails here within `timeout`."""
    import grpc
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc

    deadline = time.monotonic() + timeout
    _check_tcp(address, timeout)
    channel = init_grpc_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=max(0.1, deadline - time.monotonic()))
        reply = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo(
            gcs_service_pb2.GetAllNodeInfoRequest(),  # type: ignore[attr-defined]
            timeout=max(0.1, deadline - time.monotonic()))
    except grpc.FutureTimeoutError as exc:
        raise ClusterUnavailable(_silent(address, timeout)) from exc
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ClusterUnavailable(_silent(address, timeout)) from exc
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise ClusterUnavailable(
                f"the Ray cluster at {address} refused this machine's token: set "
                "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token) to the "
                "cluster's token (docs/CLUSTER.md)") from exc
        raise ClusterUnavailable(f"the Ray cluster at {address} answered the handshake with "
                                 f"{code.name}: {exc.details()}") from exc  # type: ignore
    finally:
        channel.close()
    alive = gcs_pb2.GcsNodeInfo.GcsNodeState.ALIVE  # type: ignore[attr-defined]
    return [Node(n.node_id.hex(), n.node_manager_address, n.is_head_node,
                 float(n.resources_total.get("CPU", 0))) for n in reply.node_info_list
            if n.state == alive]


def _silent(address: str, timeout: float) -> str:
    return (f"no Ray head answered at {address} within {timeout:g} s "
            "(PKS_RAY_CONNECT_TIMEOUT_SECONDS): the port accepts connections but does not "
            "speak Ray's protocol; give the head's GCS port (`ray start --head --port`, 6379 "
            "by default)")


def local_node(address: str, nodes: list[Node]) -> Node:
    """The cluster's node on this machine, through which a driver joins (Ray finds it among
    the raylet processes running here); without one, Ray would wait for a minute."""
    from ray._private.services import find_node_ids

    here = set(find_node_ids())
    mine = [n for n in nodes if n.id in here]
    if mine:
        return min(mine, key=lambda n: not n.head)
    advertised = ", ".join(sorted({n.address for n in nodes})) or "none"
    raise ClusterUnavailable(
        f"no node of the Ray cluster at {address} runs on this machine (its nodes advertise "
        f"{advertised}): run `ray start --address {address}` here first, or run this command "
        "on a node of the cluster (docs/CLUSTER.md)")


def _connect(address: str, timeout: float, nodes: list[Node], **init: Any) -> None:
    """`ray.init` in a thread, given up after `timeout`: a head that answers but advertises
    an address this node cannot reach keeps Ray retrying with no limit."""
    import ray

    result: dict[str, Any] = {}

    def connect() -> None:
        try:
            result["context"] = ray.init(address=address, log_to_driver=False,
                                         logging_level=logging.WARNING, **init)
        except BaseException as exc:  # handed to the waiting thread
            result["error"] = exc

    worker = logging.getLogger("ray._private.worker")
    quiet = _NoSigtermWarning()
    worker.addFilter(quiet)  # Ray warns that a thread cannot set its SIGTERM handler
    thread = threading.Thread(target=connect, name="ray-connect", daemon=True)
    try:
        thread.start()
        thread.join(timeout)
    finally:
        worker.removeFilter(quiet)
    if thread.is_alive():
        heads = ", ".join(n.address for n in nodes if n.head) or "unknown"
        raise ClusterUnavailable(
            f"Ray did not join the cluster at {address} within {timeout:g} s "
            f"(PKS_RAY_CONNECT_TIMEOUT_SECONDS): its head advertises {heads}, which every "
            "node and this machine must reach (the head's --node-ip-address; on one host "
            f"{LOOPBACK_ONLY}=0, docs/CLUSTER.md)")
    if "error" in result:
        exc = result["error"]
        raise ClusterUnavailable(f"cannot join the Ray cluster at {address}: "
                                 f"{type(exc).__name__}: {_why(exc)}") from exc
    if threading.current_thread() is threading.main_thread():
        # ray.init in the main thread makes SIGTERM exit through Python (finally blocks run,
        # Ray disconnects); from a thread it cannot, so do as it does.
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(signum))


class _NoSigtermWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _why(exc: BaseException) -> str:
    """The first line of an error and of its cause (Ray raises several kinds; the cause
    says why, e.g. a token)."""
    def first(e: BaseException) -> str:
        return next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)

    return first(exc) + (f" ({first(exc.__cause__)})" if exc.__cause__ else "")
