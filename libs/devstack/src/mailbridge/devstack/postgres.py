"""An embedded PostgreSQL: the system's binaries where present, else the ``pgserver`` package's.

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged user
(``postgres`` when it exists, else one created for the purpose). The server listens on a free
loopback port only (no Unix socket), with a password kept beside the data directory.

``stop()`` (a fast shutdown, as ``pg_ctl stop -m fast``) then ``start()`` is a real restart on
the same data directory and port: what an operator's restart or a fail-over looks like to the
services, every open connection ended (``AdminShutdownError``) and new ones refused until it is
back. The outage tests do just that.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from mailbridge.devstack.processes import (
    free_port,
    let_others_traverse,
    stop_process,
    wait_for_port,
)

HOST = "127.0.0.1"
DB_USER = "mailbridge"
DB_NAME = "mailbridge"
SERVICE_USER = "mailbridge-pg"


def postgres_bin_dir() -> Path:
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if system:
        return Path(system[-1]).parent
    try:
        import pgserver
    except ImportError as exc:
        raise RuntimeError("no PostgreSQL found: install the pgserver package (uv sync)") from exc
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
    return pwd.getpwnam(SERVICE_USER)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._bin = postgres_bin_dir()
        self._user = _run_as()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}:{self._password()}@{HOST}:{self.port}/{DB_NAME}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        cluster = self.data_dir / "cluster"
        if not (cluster / "PG_VERSION").exists():
            self._initdb(cluster)
        log = self.data_dir / "postgres.log"
        command = [
            str(self._bin / "postgres"), "-D", str(cluster), "-p", str(self.port),
            "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
            "-c", "fsync=off", "-c", "max_connections=200",
        ]  # fmt: skip
        with log.open("ab") as sink:
            self._process = subprocess.Popen(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self._uid,
                group=self._gid,
            )
        wait_for_port(HOST, self.port, timeout=30, process=self._process, log=log)
        return self.dsn

    def _initdb(self, cluster: Path) -> None:
        password_file = self.data_dir / "initdb-password"
        password_file.write_text(self._password())
        self._chown(password_file)
        command = [
            str(self._bin / "initdb"), "-D", str(cluster), "-U", DB_USER, "--auth=scram-sha-256",
            f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C",
        ]  # fmt: skip
        _run(command, user=self._uid, group=self._gid)
        password_file.unlink()
        self._create_database(cluster)

    def _create_database(self, cluster: Path) -> None:
        single_user = [str(self._bin / "postgres"), "--single", "-D", str(cluster), "postgres"]
        _run(
            single_user,
            input=f"CREATE DATABASE {DB_NAME};\n".encode(),
            user=self._uid,
            group=self._gid,
        )

    def _password(self) -> str:
        path = self.data_dir / "password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def _uid(self) -> int | None:
        return self._user.pw_uid if self._user else None

    @property
    def _gid(self) -> int | None:
        return self._user.pw_gid if self._user else None

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            shutil.chown(path, self._user.pw_uid, self._user.pw_gid)
            let_others_traverse(path.parent)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, sig=signal.SIGINT, timeout=20)  # SIGINT: fast shutdown
            self._process = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _run(command: list[str], **kwargs: object) -> None:
    result = subprocess.run(command, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.decode(errors='replace')}")
