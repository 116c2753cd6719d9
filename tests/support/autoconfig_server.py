"""An HTTPS server on loopback that answers autoconfig documents by host and path.

``documents`` maps ``(host, path)`` to a body (200), ``redirects`` to a ``Location`` (302); any
other request is a 404. The certificate is the devstack's, issued for ``*.{zone}``: every name
one label under the zone. ``requests`` lists each ``(Host header, request target)`` and ``sni``
the name each TLS handshake asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mailbridge.devstack.certs import issue_certificates

Where = tuple[str, str]  # (host, path)


@dataclass
class AutoconfigServer:
    ca_file: Path
    documents: dict[Where, bytes] = field(default_factory=dict)
    redirects: dict[Where, str] = field(default_factory=dict)
    requests: list[Where] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
            host, target = _request(await reader.readuntil(b"\r\n\r\n"))
            self.requests.append((host, target))
            writer.write(self._answer((host, target.split("?", 1)[0])))
            await writer.drain()
        writer.close()

    def _answer(self, where: Where) -> bytes:
        if where in self.redirects:
            return _response("302 Found", b"", f"Location: {self.redirects[where]}\r\n")
        if where in self.documents:
            return _response("200 OK", self.documents[where], "Content-Type: text/xml\r\n")
        return _response("404 Not Found", b"", "")

    def note_sni(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        self.sni.append(name)


def _request(head: bytes) -> tuple[str, str]:
    """The Host header and the request target of a request's head."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    host = next((v.strip() for k, v in headers.items() if k.lower() == "host"), "")
    return host, request_line.split(" ")[1]


def _response(status: str, body: bytes, headers: str) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{headers}"
    return f"{head}\r\n".encode() + body


@asynccontextmanager
async def autoconfig_server(directory: Path, zone: str) -> AsyncIterator[AutoconfigServer]:
    """The server on 127.0.0.1 and a free port, with a certificate for ``*.{zone}``."""
    paths = issue_certificates(directory, hostname=f"*.{zone}")
    server = AutoconfigServer(paths.ca_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.cert_file, paths.key_file)
    context.sni_callback = server.note_sni
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=context)
    server.port = int(listening.sockets[0].getsockname()[1])
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()
