"""Three nats-servers clustered on loopback, with JetStream: what ``deploy/nats/nats-{a,b,c}.conf``
run in production, on one machine, for the cluster test and for trying failover by hand.

Each node keeps its ports and its store across a restart, so a node SIGKILLed and started again
rejoins under the same name and catches up from its own copies, and the services' list of URLs
(``urls``, for ``MAILBRIDGE_NATS_URL``) stays valid. The ports are chosen before the first start,
because every node's routes must name the others' cluster ports (a port taken by another process
in that moment fails the start loudly, never silently).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mailbridge.devstack.nats import HOST, nats_server_binary
from mailbridge.devstack.processes import free_ports, stop_process, wait_for_port

CLUSTER_NAME = "mailbridge"
NODE_NAMES = ("nats-a", "nats-b", "nats-c")
READY_WITHIN_SECONDS = 30.0


@dataclass(frozen=True)
class NodePorts:
    client: int
    cluster: int
    monitor: int  # /healthz: 200 once this node's JetStream is current with the cluster


class ClusterNode:
    """One nats-server of the cluster; ``start`` after ``kill`` or ``stop`` restarts it alike."""

    def __init__(self, name: str, ports: NodePorts, routes: list[str], data_dir: Path) -> None:
        self.name, self.ports, self.data_dir = name, ports, data_dir
        self._routes = routes
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.ports.client}"

    @property
    def log(self) -> Path:
        return self.data_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            nats_server_binary(), "--server_name", self.name, "--addr", HOST,
            "--port", str(self.ports.client), "--http_port", str(self.ports.monitor),
            "--jetstream", "--store_dir", str(self.data_dir / "jetstream"),
            "--cluster_name", CLUSTER_NAME, "--cluster", f"nats://{HOST}:{self.ports.cluster}",
            "--routes", ",".join(self._routes), "--log", str(self.log),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, start_new_session=True)
        wait_for_port(HOST, self.ports.client, timeout=20, process=self._process, log=self.log)

    def kill(self) -> None:
        """SIGKILL: no lame-duck mode, no leadership handed over, nothing flushed."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def healthy(self) -> bool:
        """Whether the node answers its ``/healthz`` (JetStream current) with 200."""
        url = f"http://{HOST}:{self.ports.monitor}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200 and json.load(answer).get("status") == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False


class NatsCluster:
    """The three nodes; ``urls`` is what services take as ``MAILBRIDGE_NATS_URL``."""

    def __init__(self, data_dir: Path, names: tuple[str, ...] = NODE_NAMES) -> None:
        ports = iter(free_ports(3 * len(names)))
        node_ports = [NodePorts(next(ports), next(ports), next(ports)) for _ in names]
        routes = [f"nats://{HOST}:{p.cluster}" for p in node_ports]
        self.nodes = {
            name: ClusterNode(name, p, routes, data_dir / name)
            for name, p in zip(names, node_ports, strict=True)
        }

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated."""
        return ",".join(node.url for node in self.nodes.values())

    def node(self, name: str) -> ClusterNode:
        return self.nodes[name]

    def start(self) -> str:
        for node in self.nodes.values():
            node.start()
        self.wait_healthy()
        return self.urls

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def wait_healthy(self, timeout: float = READY_WITHIN_SECONDS) -> None:
        """Until every running node says its JetStream is current (a meta leader elected, every
        stream copy caught up); an error naming the laggards otherwise."""
        deadline = time.monotonic() + timeout
        while laggards := [n.name for n in self.nodes.values() if n.running and not n.healthy()]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"NATS nodes not healthy after {timeout:.0f}s: {laggards}")
            time.sleep(0.1)

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
