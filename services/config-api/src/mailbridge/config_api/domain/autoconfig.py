"""Mozilla-style autoconfig documents (``config-v1.1.xml``), read from untrusted bytes.

What detection takes of one: the first ``incomingServer type="imap"`` and the first
``outgoingServer type="smtp"`` that are usable, each its ``hostname``, ``port``, ``socketType``
(``SSL`` or ``STARTTLS``; ``plain`` is never offered) and ``username`` (a template of the
placeholders ``%EMAILADDRESS%``, ``%EMAILLOCALPART%``, ``%EMAILDOMAIN%``).

The document comes from a host a user named, so any bytes answer a ``Finding`` or None, never an
exception. A document type declaration, the only way to an entity of its own (internal, as in
"billion laughs", or external), refuses the whole document before anything is expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from mailbridge.config_api.domain.detection import EMAIL_ADDRESS, MAX_USERNAME, Finding, server
from mailbridge.config_api.domain.email_config import NO_CONTROLS, ServerSettings
from mailbridge.shared.headers import first_unsafe_character

MAX_DOCUMENT = 64 * 1024  # a real one is about 2 KiB
_SERVERS = {"incomingServer": "imap", "outgoingServer": "smtp"}  # element → the type read of it
_FIELDS = frozenset({"hostname", "port", "socketType", "username"})
_SECURITY = {"SSL": "ssl", "STARTTLS": "starttls"}


class _Refused(Exception):
    """The document declares a document type."""


@dataclass
class _Server:
    protocol: str
    fields: dict[str, str] = field(default_factory=dict)


class _Reader:
    """expat's callbacks: every server element of a wanted type, its fields, in document order."""

    def __init__(self) -> None:
        self.servers: list[_Server] = []
        self._server: _Server | None = None
        self._field: str | None = None
        self._text: list[str] = []

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if self._server is None and tag in _SERVERS and attributes.get("type") == _SERVERS[tag]:
            self._server = _Server(_SERVERS[tag])
        elif self._server is not None and self._field is None and tag in _FIELDS:
            self._field, self._text = tag, []

    def text(self, data: str) -> None:
        if self._field is not None:
            self._text.append(data)

    def end(self, tag: str) -> None:
        if self._server is not None and tag == self._field:
            self._server.fields.setdefault(tag, "".join(self._text).strip())
            self._field = None
        elif self._server is not None and self._field is None and tag in _SERVERS:
            self.servers.append(self._server)
            self._server = None


def parse_autoconfig(document: bytes, domain: str) -> Finding | None:
    """The IMAP and SMTP servers of the document, for an address at ``domain``; None when it
    names neither usably, is not such a document, or is not well-formed XML."""
    servers = _read(document)
    imap, smtp = (_first_usable(servers, protocol, domain) for protocol in ("imap", "smtp"))
    chosen = imap or smtp
    if chosen is None:
        return None
    return Finding(
        "autoconfig",
        imap=imap[0] if imap else None,
        smtp=smtp[0] if smtp else None,
        username=_username(chosen[1]),
        notes=(f"Settings published by {domain} (autoconfig).",),
    )


def _first_usable(
    servers: list[_Server], protocol: str, domain: str
) -> tuple[ServerSettings, _Server] | None:
    for candidate in servers:
        if candidate.protocol == protocol and (settings := _settings(candidate, domain)):
            return settings, candidate
    return None


def _read(document: bytes) -> list[_Server]:
    if len(document) > MAX_DOCUMENT:
        return []
    reader, parser = _Reader(), expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.StartElementHandler = reader.start
    parser.CharacterDataHandler = reader.text
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(document, True)
    except (expat.ExpatError, _Refused, LookupError, ValueError):
        return []  # LookupError and ValueError: an encoding declared that Python cannot decode
    return reader.servers


def _refuse(*_: object) -> None:
    raise _Refused


def _settings(candidate: _Server, domain: str) -> ServerSettings | None:
    values = candidate.fields
    security = _SECURITY.get(values.get("socketType", ""))
    if security is None or "port" not in values:
        return None
    host = values.get("hostname", "").replace("%EMAILDOMAIN%", domain)
    return server(host, values["port"], security)


def _username(chosen: _Server) -> str:
    template = chosen.fields.get("username", "")
    plain = re.match(NO_CONTROLS, template) and first_unsafe_character(template) is None
    return template if template and len(template) <= MAX_USERNAME and plain else EMAIL_ADDRESS
