"""Hypothesis strategies for the text mail libraries misread, made on purpose rather than by luck.

Random text almost never holds an RFC 2047 encoded word whose payload decodes to CR LF, an RFC 2231
value, a bracket left open or a 1000-character line; these strategies make them often, mixed with
well-formed addresses and messages so that the code paths past the first check run too. Every
strategy is bounded, so the unit level stays fast (see :data:`PROPERTIES`).
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from mailbridge.shared.messages import Attachment, SendMessage

# One profile for every property of the unit level, applied with ``@PROPERTIES`` rather than
# loaded globally, so the schemathesis tests of the e2e level keep their own settings.
# - max_examples is small (the unit level runs in seconds); HYPOTHESIS_PROFILE=fuzz runs many more.
# - derandomize stays off: each run explores new examples, and a failure prints the seed and a
#   @reproduce_failure blob to replay it. Inputs worth keeping for good go to fuzz/corpus/.
# - the example database replays a failure on the next local run; CI's clone is fresh every time,
#   so there (CI set) it is off rather than writing files nobody reads. Locally it lives in
#   .pytest_cache/, which git ignores, instead of a .hypothesis/ folder in the work tree.
# - the deadline catches a slow input (the parsers have had quadratic cases) with room for a
#   loaded CI machine; too_slow is suppressed because a 64 KiB message is slow to *generate*.
_ROOT = Path(__file__).resolve().parents[1]
_DATABASE = (
    None
    if os.environ.get("CI")
    else DirectoryBasedExampleDatabase(_ROOT / ".pytest_cache" / "hypothesis")
)
settings.register_profile(
    "unit",
    max_examples=60,
    deadline=5000,
    derandomize=False,
    database=_DATABASE,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("fuzz", parent=settings.get_profile("unit"), max_examples=20_000)
PROPERTIES = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))

INJECTED = "Hello\r\nBcc: evil@evil.example"
CONTROLS = (
    *("\r", "\n", "\r\n", "\x00", "\x08", "\x1b", "\x7f", "\t"),
    *("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"),  # str.splitlines breaks
    *("\ud800", "\udc80", "\udfff"),  # lone surrogates
)
FOLDING = ("\r\n ", "\r\n\t", "\n ", "\r ", " \t ", "  ")
LEFT_OPEN = ('"', "<", ">", "(", ")", "[", "]", "\\", "@", ":", ";", ",", ".", "'", "%", "=?", "?=")
CHARSETS = (
    *("utf-8", "UTF-8", "latin-1", "iso-8859-1", "us-ascii", "cp1252", "koi8-r", "utf-16"),
    *("utf-7", "unknown-8bit", "x-bogus", "", "utf-8*en", "rot13", "unicode_escape"),
    *("idna", "punycode", "undefined"),  # codecs that fail with errors="replace" too
    *("utf\x00-8", "utf-8\udcff"),  # names no codec lookup takes
)
CONTENT_TYPES = ("text/plain", "application/pdf", "image/png", "message/rfc822", "text/html")

# --- text fragments ----------------------------------------------------------------------------

ordinary_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="%=\\"),
    max_size=24,
)
any_text = st.text(max_size=12)  # Hypothesis' own text: controls, but no lone surrogates
payload_bytes = st.lists(
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from([INJECTED, *CONTROLS, "é", "€", " ", "?", "="]).map(
            lambda text: text.encode("utf-8", "surrogatepass")
        ),
    ),
    max_size=5,
).map(b"".join)


def encoded_word(charset: str, encoding: str, payload: bytes, padded: bool | str = True) -> str:
    """``=?charset?B|Q?payload?=`` as a sender would write it, Q escaping all but plain letters;
    base64 padded or not, or with what the standard library reads past: a stray ``"-"`` before
    it (``padded="dash"``) or a ``"="`` inside it (``"inner"``)."""
    if encoding in "bB":
        text = base64.b64encode(payload).decode("ascii")
        text = text if padded is True else text.rstrip("=")
        text = "-" + text if padded == "dash" else text
        text = text[:2] + "=" + text[2:] if padded == "inner" else text
    else:
        text = "".join(
            chr(byte) if chr(byte).isalnum() else "_" if byte == 0x20 else f"={byte:02X}"
            for byte in payload
        )
    return f"=?{charset}?{encoding}?{text}?="


charsets = st.one_of(st.sampled_from(CHARSETS), st.text("abcxyz-_0189*", max_size=8))
encoded_words = st.builds(
    encoded_word,
    charsets,
    st.sampled_from("BbQq"),
    payload_bytes,
    st.sampled_from([True, False, "dash", "inner"]),
)
rfc2231_values = st.builds(
    lambda charset, language, payload: f"{charset}'{language}'{urllib.parse.quote(payload)}",
    charsets,
    st.sampled_from(["", "en", "de-DE", "x"]),
    payload_bytes,
)
long_runs = st.builds(
    lambda unit, count: (unit * count)[:count],
    st.sampled_from(["x", "word ", "=", '"', "(", "é", "a,", "=?utf-8?q?a?= "]),
    st.integers(990, 1100),
)


# --- addresses ---------------------------------------------------------------------------------

atoms = st.from_regex(r"[A-Za-z0-9!#$&'*+/=?^_`{|}~-]{1,10}", fullmatch=True)
dot_atoms = st.lists(atoms, min_size=1, max_size=3).map(".".join)
quoted_locals = st.text(st.sampled_from('ab @,;<>().:\\"é'), max_size=8).map(
    lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
labels = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["bücher", "xn--bcher-kva", "EXAMPLE", "\u0430llowed", "例え", "a" * 63, "-x"]),
)
domains = st.builds(
    lambda parts, dot: ".".join(parts) + dot,
    st.lists(labels, min_size=2, max_size=4),
    st.sampled_from(["", "", "."]),
) | st.sampled_from(["[127.0.0.1]", "localhost", "x..y.example"])
addr_specs = st.builds(
    lambda local, domain: f"{local}@{domain}", st.one_of(dot_atoms, quoted_locals), domains
)
display_names = st.one_of(ordinary_text, encoded_words, st.just("Doe, J"), quoted_locals)
mailboxes = st.one_of(
    addr_specs,
    st.builds(lambda name, addr: f"{name} <{addr}>", display_names, addr_specs),
    st.builds(lambda name, addr: f'"{name}" <{addr}>', display_names, addr_specs),
    st.builds(lambda addr, comment: f"{addr} ({comment})", addr_specs, ordinary_text),
)
address_lists = st.builds(
    lambda items, separator: separator.join(items),
    st.lists(mailboxes, min_size=1, max_size=4),
    st.sampled_from([", ", ",", "; ", ";", " , "]),
)


# --- header text: everything above, and mixed ---------------------------------------------------

fragments = st.one_of(
    ordinary_text,
    any_text,
    st.sampled_from(CONTROLS),
    st.sampled_from(FOLDING),
    st.sampled_from(LEFT_OPEN),
    encoded_words,
    rfc2231_values,
    long_runs,
    addr_specs,
)
header_text = st.lists(fragments, max_size=6).map("".join)


@st.composite
def spliced(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A value of ``base`` with a hostile fragment put somewhere inside it."""
    text, fragment = draw(base), draw(fragments)
    at = draw(st.integers(0, len(text)))
    return text[:at] + fragment + text[at:]


address_values = st.one_of(address_lists, spliced(address_lists), header_text)
ascii_domains = st.lists(  # LDH labels, without IDNA's reserved "--" at the third character
    st.from_regex(r"[a-z0-9]{1,4}(-[a-z0-9]{1,4})?", fullmatch=True), min_size=2, max_size=3
).map(".".join)
ordinary_domains = ascii_domains | ascii_domains.map(lambda domain: "bücher." + domain)
ordinary_mailboxes = st.builds(
    lambda local, domain, name: (
        f"{local}@{domain}" if name is None else f'"{name}" <{local}@{domain}>'
    ),
    dot_atoms,
    ordinary_domains,
    st.none() | ordinary_text.map(lambda name: name.replace('"', "")),
)
ordinary_address_lists = st.lists(ordinary_mailboxes, min_size=1, max_size=3).map(", ".join)
rule_entries = st.one_of(
    address_values,
    domains,
    domains.map(lambda domain: "@" + domain),
    domains.map(lambda domain: "*." + domain),
    spliced(domains),
)

# --- send commands -----------------------------------------------------------------------------

message_ids = st.builds(lambda left, right: f"<{left}@{right}>", dot_atoms, ascii_domains)
ordinary_filenames = st.builds(
    lambda stem, ext: stem + ext,
    ordinary_text.filter(bool),
    st.sampled_from([".pdf", ".txt", "", ".tar.gz"]),
)
bodies = st.one_of(st.none(), st.text(max_size=40), long_runs, header_text)


def attachments(
    filenames: st.SearchStrategy[str], types: st.SearchStrategy[str]
) -> st.SearchStrategy[list[Attachment]]:
    one = st.builds(
        Attachment,
        filename=filenames,
        content_type=types,
        content_base64=st.binary(max_size=24).map(lambda data: base64.b64encode(data).decode()),
    )
    return st.lists(one, max_size=2)


@st.composite
def send_commands(draw: st.DrawFn) -> SendMessage:
    """A command whose every field may be hostile, though often most are well-formed."""
    field = st.one_of(header_text, spliced(ordinary_text), ordinary_text)
    return SendMessage(
        agent_id="agent-1",
        command_id="cmd_property",
        to=draw(st.lists(address_values, min_size=1, max_size=3)),
        cc=draw(st.lists(address_values, max_size=2)),
        bcc=draw(st.lists(address_values, max_size=2)),
        subject=draw(field),
        text=draw(bodies),
        html=draw(bodies),
        in_reply_to=draw(st.one_of(st.none(), message_ids, field)),
        references=draw(st.lists(st.one_of(message_ids, field), max_size=3)),
        attachments=draw(
            attachments(
                st.one_of(field, ordinary_filenames),
                st.one_of(st.sampled_from(CONTENT_TYPES), field),
            )
        ),
    )


# what the HTTP API lets through: a subject of at most 998 characters, no encoded words
ordinary_long_runs = long_runs.filter(lambda text: "=" not in text).map(lambda text: text[:998])


@st.composite
def ordinary_commands(draw: st.DrawFn) -> SendMessage:
    """A command a well-behaved client sends: it must be built, never refused."""
    return SendMessage(
        agent_id="agent-1",
        command_id="cmd_ordinary",
        to=draw(st.lists(ordinary_address_lists, min_size=1, max_size=2)),
        cc=draw(st.lists(ordinary_address_lists, max_size=1)),
        bcc=draw(st.lists(ordinary_address_lists, max_size=1)),
        subject=draw(st.one_of(ordinary_text, ordinary_long_runs)),
        text=draw(st.one_of(st.none(), st.text(max_size=200))),
        html=draw(st.one_of(st.none(), st.text(max_size=200))),
        in_reply_to=draw(st.one_of(st.none(), message_ids)),
        # a long thread too (more ids than a reply keeps), with ids repeated
        references=draw(st.lists(st.one_of(message_ids, st.just("<root@x.example>")), max_size=25)),
        attachments=draw(attachments(ordinary_filenames, st.sampled_from(CONTENT_TYPES))),
    )


# --- received messages: bytes from anyone --------------------------------------------------------

MAX_RECEIVED = 64 * 1024
HEADER_NAMES = (
    *("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References"),
    *("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version"),
)
TRANSFER_ENCODINGS = ("7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus")
LEAF_TYPES = ("text/plain", "text/html", "application/pdf", "message/rfc822", "text/rfc822-headers")
QUADRATIC_UNITS = (
    b'"',
    b"\\",
    b".",
    b"a,",
    b"(",
    b")",
    b"<",
    b"<a@b>",
    b":",
    b";",
    b"=?",
    b"\r\n ",
)


def _octets(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


header_octets = st.one_of(
    header_text.map(_octets), st.binary(max_size=16), address_values.map(_octets)
)
repeated_units = st.builds(
    lambda unit, count: unit * count, st.sampled_from(QUADRATIC_UNITS), st.integers(50, 3000)
)
boundaries = st.one_of(
    st.sampled_from(["b", "=_part", "a" * 70, "x y", "--", ""]),
    st.text("abc=_-.:'() ", min_size=1, max_size=12),
)
parameters = st.one_of(
    st.builds(lambda charset: f'; charset="{charset}"', st.sampled_from(CHARSETS)),
    st.builds(lambda name: f'; name="{name}"', header_text),
    st.builds(lambda value: f"; name*={value}", rfc2231_values),
    st.just(""),
)
dispositions = st.one_of(
    st.just(b""),
    st.builds(
        lambda kind, name: b"Content-Disposition: " + _octets(kind + name) + b"\r\n",
        st.sampled_from(["attachment", "inline", "ATTACHMENT", "bogus"]),
        st.one_of(
            st.just(""),
            header_text.map(lambda name: f'; filename="{name}"'),
            rfc2231_values.map(lambda value: f"; filename*={value}"),
            rfc2231_values.map(lambda value: f"; filename*0*={value}; filename*1=tail"),
        ),
    ),
)


@st.composite
def leaf_parts(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(LEAF_TYPES).map(_octets) | header_octets)
    content_type += _octets(draw(parameters))
    encoding = draw(st.sampled_from(TRANSFER_ENCODINGS).map(_octets) | header_octets)
    body = draw(st.one_of(st.binary(max_size=64), header_text.map(_octets), repeated_units))
    if encoding == b"base64" and draw(st.booleans()):
        body = base64.encodebytes(body)
    return (
        (b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: " + encoding + b"\r\n")
        + draw(dispositions)
        + b"\r\n"
        + body
    )


def _multipart(subtype: str, boundary: str, children: list[bytes], closed: bool) -> bytes:
    delimiter = b"\r\n--" + _octets(boundary)
    head = b"Content-Type: multipart/" + _octets(subtype) + b'; boundary="' + _octets(boundary)
    body = b"".join(delimiter + b"\r\n" + child for child in children)
    return head + b'"\r\n\r\npreamble' + body + (delimiter + b"--\r\nepilogue" if closed else b"")


mime_trees = st.recursive(
    leaf_parts(),
    lambda children: st.builds(
        _multipart,
        st.sampled_from(["mixed", "alternative", "related", "digest", "signed", "x"]),
        boundaries,
        st.lists(children, max_size=4),
        st.booleans(),
    ),
    max_leaves=8,
)


@st.composite
def received_messages(draw: st.DrawFn) -> bytes:
    """A message as a mail server may hand it over: ordinary, broken, hostile, or bytes at all."""
    names = st.sampled_from(HEADER_NAMES) | st.from_regex(r"[!-9;-~]{1,12}", fullmatch=True)
    values = st.one_of(header_octets, repeated_units)
    headers = draw(st.lists(st.tuples(names.map(_octets), values), max_size=8))
    raw = b"".join(name + b": " + value + b"\r\n" for name, value in headers) + draw(mime_trees)
    if draw(st.booleans()):
        raw = raw.replace(b"\r\n", draw(st.sampled_from([b"\n", b"\r", b"\r\n\r\n"])))
    for _ in range(draw(st.integers(0, 3))):  # a few flipped bytes anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at + 1 :]
    return raw[:MAX_RECEIVED]


def nested_messages(depth: int, kind: str) -> bytes:
    """``depth`` multiparts (or message/rfc822 parts) each inside the last, then many lines."""
    if kind == "rfc822":
        head = b"Content-Type: message/rfc822\r\n\r\n" * depth
    else:
        head = b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
            for i in range(depth)
        )
    return (head + b"Content-Type: text/plain\r\n\r\n" + b"x\r\n" * 20_000)[:MAX_RECEIVED]


def wide_messages(parts: int) -> bytes:
    one = b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a\r\n\r\nx\r\n"
    return b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + one * parts + b"--b--\r\n"


any_received = st.one_of(
    received_messages(),
    st.binary(max_size=256),
    st.builds(nested_messages, st.integers(1, 60), st.sampled_from(["multipart", "rfc822"])),
    st.builds(wide_messages, st.integers(1, 500)),
    st.builds(
        lambda name, value: (name + b": " + value * (MAX_RECEIVED // len(value)))[:MAX_RECEIVED],
        st.sampled_from(HEADER_NAMES).map(_octets),
        st.sampled_from(QUADRATIC_UNITS),
    ),
)


# --- inbound screening ---------------------------------------------------------------------------

AUTHSERV_IDS = ("mx.acme.example", "MX.ACME.EXAMPLE", '"mx.acme.example"', "evil.example", "")
AUTH_METHODS = ("spf", "dkim", "dmarc", "auth", "iprev", "arc", "DKIM/1", "sender-id")
AUTH_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "policy", "hardfail")
AUTH_PIECES = (";", "=", "/", ".", "(", ")", '"', "\\", "\r\n ", "\t", " ", "(c (d))", '"a;b"')
resinfos = st.builds(
    lambda method, result, rest: f"{method}={result}{rest}",
    st.sampled_from(AUTH_METHODS),
    st.sampled_from(AUTH_RESULTS),
    st.sampled_from(["", " smtp.mailfrom=x.example", ' reason="a;b"', " (bad; sig)", " header.d="]),
)
authentication_results = st.one_of(
    st.builds(
        lambda authserv_id, version, items: "; ".join([authserv_id + version, *items]),
        st.sampled_from(AUTHSERV_IDS),
        st.sampled_from(["", " 1", " (comment) 1 (x)", " x"]),
        st.lists(resinfos, max_size=6),
    ),
    st.lists(st.one_of(st.sampled_from(AUTH_PIECES), resinfos, any_text), max_size=20).map("".join),
    st.builds(lambda unit, count: unit * count, st.sampled_from(AUTH_PIECES), st.integers(1, 9000)),
)
confusable_labels = st.sampled_from(
    [
        "acme",
        "\u0430cme",
        "acm\u0435",
        "acrne",
        "amce",
        "xn--acm-tdd",
        "xn--zz-",
        "xn--",
        "\uff41\uff43\uff4d\uff45",
    ]
)
sender_domains = st.one_of(
    domains,
    st.builds(lambda label, tld: f"{label}.{tld}", confusable_labels, st.sampled_from(["example"])),
    any_text,
)
display_names = st.one_of(
    any_text, st.sampled_from(["acme.example", "billing@acme.example", "ACME.EXAMPLE x", "Ada"])
)
