"""Recipients as the mail transport sees them, parsed once, the same way by everyone.

The mail-worker builds its ``RCPT TO`` list with :func:`parse_recipients`, and policy checks that
very list against a client organization's allowlist with :class:`RecipientRule`. One parser for
both means no string can mean one address to the checker and another to the sender:

- a value may hold a list (``a@x, b@y`` or Outlook's ``a@x; b@y``); every address in it counts;
- display names and quoted local parts go through the standard library's RFC 5322 parser, so
  ``"ok@allowed.com" <evil@x.io>`` is ``evil@x.io`` and ``"ok"@allowed.com`` is ``ok@allowed.com``;
- domains are compared in their IDNA ASCII form, lowercased, without a trailing dot, so
  ``BÜCHER.example.`` and ``xn--bcher-kva.example`` are one domain and a Cyrillic look-alike is not;
- local parts compare case-insensitively; anything unparseable, an IP literal, a non-ASCII local
  part, or text that would break a header line once decoded is refused (:class:`AddressError`),
  never guessed at — whatever the input, ``AddressError`` is the only exception raised.
"""

from __future__ import annotations

import email.headerregistry
import email.policy
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from email.errors import MessageError

import idna

from mailbridge.shared.headers import HeaderValueError, check_header_text

MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_ADDRESS = 998  # one header line: no address is longer
MAX_NESTING = 20  # comments in comments: the standard library's parser recurses on each
# The library folds a long non-ASCII display name in time that grows faster than its length
# (600 characters: two seconds of CPU), and no mail program shows more than a line of one.
MAX_DISPLAY_NAME = 128
MAX_RECIPIENTS = 100  # to, cc and bcc together, in one send: over HTTP and over NATS alike
_SEPARATORS = ",;"
_HEADER = email.policy.default.header_factory


class AddressError(ValueError):
    """Not an address mailbridge will send to; the message says which and why."""


PARSED_KEPT = 4096  # addresses whose parse is kept (each at most MAX_ADDRESS characters)


@dataclass(frozen=True)
class Recipient:
    display_name: str
    local_part: str
    domain: str  # IDNA ASCII, lowercase, no trailing dot

    @property
    def envelope(self) -> str:
        """What goes into ``RCPT TO`` (the local part quoted only where RFC 5321 needs it)."""
        return email.headerregistry.Address(username=self.local_part, domain=self.domain).addr_spec

    @property
    def key(self) -> str:
        """The form two spellings of one mailbox share; what allowlists compare."""
        return f"{self.local_part.lower()}@{self.domain}"

    def header_form(self) -> str:
        address = email.headerregistry.Address(self.display_name, self.local_part, self.domain)
        return str(address)


def parse_recipients(values: Iterable[str]) -> list[Recipient]:
    """Every address in ``values`` (each may be a list), in order, without repeats."""
    found: dict[str, Recipient] = {}
    for value in values:
        _check_text(value)  # the whole value: splitting strips the whitespace controls at its ends
        for piece in split_list(value):
            recipient = parse_one(piece)
            found.setdefault(recipient.key, recipient)
    return list(found.values())


def split_list(value: str) -> list[str]:
    """``a@x, "Doe, J" <b@y>; c@z`` → three pieces; separators in quotes, ``<>`` or ``()`` stay."""
    pieces: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "<(":
            depth += 1
        elif not quoted and char in ">)":
            depth -= 1
        elif not quoted and depth == 0 and char in _SEPARATORS:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()]


@functools.lru_cache(maxsize=PARSED_KEPT)
def parse_one(piece: str) -> Recipient:
    """One address, with or without a display name; anything else raises AddressError.

    Kept for the ``PARSED_KEPT`` addresses read last (a send reads its sender and recipients
    about seven times: the envelope, the headers, policy's check, the serialized read-back), each
    bounded by ``MAX_ADDRESS``; a refusal is not kept, so it costs its parse every time."""
    _check_text(piece)
    address = _one_address(piece)
    if not address.username or not address.domain or address.domain.startswith("["):
        raise AddressError(f"not a deliverable email address: {piece!r}")
    if not address.username.isascii():
        raise AddressError(f"a non-ASCII local part needs SMTPUTF8: {piece!r}")
    if len(address.display_name) > MAX_DISPLAY_NAME:
        raise AddressError(f"a display name may be at most {MAX_DISPLAY_NAME} characters")
    if len(address.username) > MAX_LOCAL_PART:
        raise AddressError(f"a local part may be at most {MAX_LOCAL_PART} characters: {piece!r}")
    if _misplaced_dot(address.username):
        raise AddressError(f"a local part may not start or end with a dot, or hold two: {piece!r}")
    return Recipient(address.display_name, address.username, normalized_domain(address.domain))


def _misplaced_dot(local_part: str) -> bool:
    """``"."@x`` or ``"a..b"@x``: legal quoted, but the standard library writes such a local part
    back unquoted (its quoting ignores dots), which no longer reads as the same address; no mail
    provider hands out such an address, so it is refused rather than sent to."""
    return local_part.startswith(".") or local_part.endswith(".") or ".." in local_part


def _check_text(text: str) -> None:
    try:
        check_header_text(text, "an address")
    except HeaderValueError as exc:
        raise AddressError(str(exc)) from exc


def _one_address(piece: str) -> email.headerregistry.Address:
    """The standard library's RFC 5322 parser. Its own failures on malformed input (IndexError,
    AttributeError, TypeError deep in its token parser) mean what a defect means: no address."""
    if len(piece) > MAX_ADDRESS or piece.count("(") > MAX_NESTING:
        raise AddressError(f"not one email address (too long or too nested): {piece[:100]!r}")
    try:
        header = _HEADER("To", _without_trailing_dot(piece))
        addresses, defects = header.addresses, header.defects
    except (
        IndexError, AttributeError, TypeError, ValueError, RecursionError, MessageError
    ) as exc:  # fmt: skip
        raise AddressError(f"not one email address: {piece[:100]!r}") from exc
    if len(addresses) != 1 or defects:
        raise AddressError(f"not one email address: {piece!r}")
    address: email.headerregistry.Address = addresses[0]
    return address


def normalized_domain(domain: str) -> str:
    """``BÜCHER.Example.`` → ``xn--bcher-kva.example``; raises AddressError when not a domain."""
    bare = domain.strip().removesuffix(".")
    try:
        ascii_domain = idna.encode(bare, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"not a valid domain: {domain!r}") from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(labels):  # one label, or an empty one (``a..b``, ``x..``)
        raise AddressError(f"not a fully qualified domain: {domain!r}")
    return ascii_domain.lower()


def _without_trailing_dot(piece: str) -> str:
    """``a@acme.com.`` (a fully qualified domain) parses as ``a@acme.com``."""
    stripped = piece.rstrip()
    if stripped.endswith(".>"):
        return stripped[:-2] + ">"
    return stripped.removesuffix(".")


@dataclass(frozen=True)
class RecipientRule:
    """One allowlist entry: an address (``bob@acme.com``), a domain (``acme.com`` or ``@acme.com``)
    or every subdomain of one (``*.acme.com``, which does not include ``acme.com`` itself)."""

    kind: str  # "address" | "domain" | "subdomains"
    value: str

    @classmethod
    def parse(cls, entry: str) -> RecipientRule:
        text = entry.strip()
        if text.startswith("*."):
            return cls("subdomains", normalized_domain(text[2:]))
        if "@" in text.lstrip("@"):
            return cls("address", parse_one(text).key)
        return cls("domain", normalized_domain(text.lstrip("@")))

    def allows(self, recipient: Recipient) -> bool:
        if self.kind == "address":
            return recipient.key == self.value
        if self.kind == "domain":
            return recipient.domain == self.value
        return recipient.domain.endswith("." + self.value)

    def render(self) -> str:
        """As an allowlist entry again: parsing the rendered rule gives the same rule."""
        if self.kind == "address":  # its local part quoted where it needs it, as in RCPT TO
            local_part, _, domain = self.value.rpartition("@")
            return email.headerregistry.Address(username=local_part, domain=domain).addr_spec
        return {"domain": "{}", "subdomains": "*.{}"}[self.kind].format(self.value)


def allowed_by(rules: Iterable[RecipientRule], recipient: Recipient) -> bool:
    return any(rule.allows(recipient) for rule in rules)
