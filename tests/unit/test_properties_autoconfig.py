"""The autoconfig parser, for any bytes: a finding a save body takes, or None; never an exception
(:func:`fuzz.contracts.check_autoconfig`). Documents are made from the pieces that matter — server
types, socket types, ports, placeholders, entities, encodings — as often as from random bytes."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz import contracts
from fuzz.seeds import AUTOCONFIG
from mailbridge.config_api.domain.autoconfig import parse_autoconfig
from tests import strategies as s

DOMAIN = contracts.AUTOCONFIG_DOMAIN
PLACEHOLDERS = ("%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%", "%EMAILWHAT%", "%")
HOSTS = ("imap.acme.example", "smtp.acme.example", "a_b.example", "-x.example", "x" * 300, "")
PORTS = ("993", "587", " 465 ", "0", "65536", "-1", "9 9", "0x3e1", "٩٩٣", "1e3", "")
SOCKETS = ("SSL", "STARTTLS", "plain", "ssl", "TLS", "")
TYPES = ("imap", "smtp", "pop3", "exchange", "IMAP", "")
ENTITIES = ("&amp;", "&lt;", "&#10;", "&#x85;", "&#xD800;", "&x;", "&", "<![CDATA[<]]>")


def _value(pieces: tuple[str, ...]) -> st.SearchStrategy[str]:
    parts = st.sampled_from((*pieces, *PLACEHOLDERS, *ENTITIES)) | s.any_text
    return st.lists(parts, max_size=3).map("".join)


@st.composite
def servers(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(("incomingServer", "outgoingServer", "server")))
    fields = {
        "hostname": draw(_value(HOSTS)),
        "port": draw(_value(PORTS)),
        "socketType": draw(_value(SOCKETS)),
        "username": draw(_value(())),
    }
    chosen = draw(st.lists(st.sampled_from(list(fields)), unique=True, max_size=4))
    inner = "".join(f"<{name}>{fields[name]}</{name}>" for name in chosen)
    return f'<{tag} type="{draw(st.sampled_from(TYPES))}">{inner}</{tag}>'


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    head = draw(
        st.sampled_from(('<?xml version="1.0"?>', "", '<!DOCTYPE c [<!ENTITY x "y">]>', "<!-- -->"))
    )
    body = "".join(draw(st.lists(servers(), max_size=4)))
    text = f'{head}<clientConfig><emailProvider id="{DOMAIN}">{body}</emailProvider></clientConfig>'
    encoding = draw(st.sampled_from(("utf-8", "utf-16", "latin-1")))
    return text.encode(encoding, errors="replace")


@s.PROPERTIES
@given(st.one_of(st.binary(max_size=2048), documents()))
@example(AUTOCONFIG["billion-laughs"])
@example(AUTOCONFIG["external-entity"])
@example(b'<?xml version="1.0" encoding="x-bogus"?><a/>')
@example(b'<?xml version="1.0" encoding="utf-8\x00"?><a/>')
@example(b"<a>" * 10_000)
def test_any_bytes_are_a_finding_or_none(document: bytes) -> None:
    contracts.check_autoconfig(document)


def _one_server(kind: str, kind_type: str, **fields: str) -> bytes:
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f'<clientConfig><{kind} type="{kind_type}">{inner}</{kind}></clientConfig>'.encode()


def test_the_first_usable_server_of_each_kind_is_taken() -> None:
    found = contracts.check_autoconfig(AUTOCONFIG["thunderbird"])
    assert found is not None
    assert found.imap is not None
    assert found.smtp is not None
    assert (found.imap.host, found.imap.port, found.imap.security) == (
        "imap.acme.example",
        993,
        "ssl",
    )
    assert (found.smtp.port, found.smtp.security) == (587, "starttls")
    assert found.for_address("jo.doe@acme.example").username == "jo.doe"


def test_a_document_type_refuses_the_document_before_any_entity_is_expanded() -> None:
    assert parse_autoconfig(AUTOCONFIG["billion-laughs"], DOMAIN) is None
    assert parse_autoconfig(AUTOCONFIG["external-entity"], DOMAIN) is None


def test_plain_text_servers_are_never_offered() -> None:
    assert parse_autoconfig(AUTOCONFIG["plain-only"], DOMAIN) is None


def test_an_smtp_server_alone_is_a_finding_without_imap() -> None:
    document = _one_server(
        "outgoingServer", "smtp", hostname="smtp.acme.example", port="465", socketType="SSL"
    )
    found = parse_autoconfig(document, DOMAIN)
    assert found is not None
    assert found.imap is None
    assert found.for_address("jo@acme.example").username == "jo@acme.example"


def test_a_user_name_with_a_control_character_falls_back_to_the_address() -> None:
    found = parse_autoconfig(AUTOCONFIG["username-control"], DOMAIN)
    assert found is not None
    assert found.for_address("jo@acme.example").username == "jo@acme.example"
