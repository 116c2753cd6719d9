"""What every connection to a host a user chose goes through: verified TLS, and which addresses
count as the inside of mailbridge's own network.

The mail-worker's IMAP and SMTP connections and config-api's settings detection (autoconfig) both
reach hosts named by users. Each resolves the host once, refuses it when an address is internal
(:func:`is_internal`) and the operator has not allowed private hosts, and connects only to the
addresses it checked; each verifies TLS with :func:`tls_context`.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying, TLS 1.2 at least: the system's CAs, plus ``ca_file`` (tests, private CAs)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def is_internal(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified or CGNAT."""
    ip = ipaddress.ip_address(address)
    return bool(
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (ip.version == 4 and ip in _CGNAT)
    )
