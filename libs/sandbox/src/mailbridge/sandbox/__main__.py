"""``python -m mailbridge.sandbox --port 0 --ports-file F --certfile C --keyfile K``."""

from __future__ import annotations

import argparse
import logging
import socket
from pathlib import Path

import uvicorn

from mailbridge.sandbox.app import create_app

log = logging.getLogger("mailbridge.sandbox")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mailbridge.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--public-url", help="default https://HOST:PORT")
    parser.add_argument("--ports-file", type=Path, help="where the bound port is written")
    return parser.parse_args()


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening before uvicorn starts, so ``--port 0`` has a known port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="sandbox      | %(message)s")
    sock = listening_socket(arguments.host, arguments.port)
    port = int(sock.getsockname()[1])
    public_url = arguments.public_url or f"https://{arguments.host}:{port}"
    config = uvicorn.Config(
        create_app(public_url),
        ssl_certfile=arguments.certfile,
        ssl_keyfile=arguments.keyfile,
        log_level="warning",
    )
    if arguments.ports_file is not None:
        arguments.ports_file.write_text(f"{port}\n")
    log.info("mailbridge sandbox provider listening on %s", public_url)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
