"""``python -m fuzz.seeds``: the hand-made inputs each corpus starts from, as ``seed-*`` files.

Each is a known way in: the encoded-word subject that decodes to CR LF (CPython gh-121650), RFC
2231 values, brackets and quotes left open, lists, long lines, line separators, codecs that fail
even with ``errors="replace"``, and for received mail the headers and nestings that are quadratic
or recursive in the standard library; for autoconfig documents the servers a client must not be
offered (plain text, ports out of range) and the entities an XML parser must not expand. Rewriting
them is idempotent.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fuzz.targets import FIELD, encode_command, encode_text
from mailbridge.shared.messages import Attachment, SendMessage

INJECTED = "Hello\r\nBcc: evil@evil.example"
ENCODED_B = f"=?utf-8?B?{base64.b64encode(INJECTED.encode()).decode()}?="
ENCODED_Q = "=?utf-8?Q?Hello=0D=0ABcc:_evil@evil.example?="
RFC2231 = "utf-8''%0D%0ABcc%3A%20evil%40evil.example"
LENIENT_B = "=?utf-8?B?-SGVsbG8NCkJjYzogZXZpbEBldmlsLmV4YW1wbGU?="

HEADERS = {
    "encoded-b-crlf": ENCODED_B,
    "encoded-q-crlf": ENCODED_Q,
    "rfc2231-crlf": RFC2231,
    "utf16-crlf": "=?utf-16?B?AA0ACg==?=",
    "ascii-bytes-nel": "=?us-ascii?Q?=C2=85?=",
    "idna-codec": "=?idna?Q?a?=",
    "line-separator": "a\u2028b",
    "lone-surrogate": "a\ud800b",
    "folded": "Hello\r\n world",
    "long-line": "x" * 1200,
    "harmless-word": "=?utf-8?B?4oKsIDEwMA==?=",
    "b64-lenient-crlf": LENIENT_B,  # the library drops the "-" and reads the rest unpadded
    "b64-lenient-padding": "=??B?5oKswDIEm=A?=",  # a "=" inside: the library reads on past it
}

ADDRESSES = {
    "unclosed-angle": ["Ada <ada@example.com"],
    "stdlib-indexerror": ["=[\t@@é,<."],
    "stdlib-typeerror": ["(@ :).<;"],
    "encoded-display-crlf": [f"{ENCODED_B} <ada@example.com>"],
    "quoted-decoy": ['"ok@allowed.com" <evil@x.io>', '"ok"@allowed.com'],
    "lists": ['a@x.example, "Doe, J" <b@y.example>; c@z.example', "A@X.example."],
    "idna": ["BÜCHER.example.", "*.bücher.example", "@xn--bcher-kva.example", "\u0430llowed.com"],
    "rfc2231-local": [f"{RFC2231}@x.example"],
    "idna-codec-display": ["=?idna?Q?a?= <a@b.example>"],
    "double-trailing-dot": ["x..", "a@example.com.."],
    "long-local": ["a" * 65 + "@example.com", "b" * 1200 + "@example.com"],
}


def command(**fields: object) -> SendMessage:
    base: dict[str, object] = {"to": ["ada@x.example"], "subject": "Hi", "text": "hello"}
    return SendMessage(agent_id="agent-1", command_id="cmd_seed", **(base | fields))


def attachment(filename: str, content_type: str = "application/pdf") -> Attachment:
    return Attachment(filename=filename, content_type=content_type, content_base64="aGk=")


COMMANDS = {
    "subject-encoded-b": command(subject=ENCODED_B),
    "subject-encoded-q": command(subject=ENCODED_Q),
    "reply-encoded": command(in_reply_to=f"<a@b.example> {ENCODED_B}"),
    "reply": command(in_reply_to="<a@b.example>", subject="Re: hi", html="<p>hi</p>"),
    "cc-encoded-display": command(cc=[f"{ENCODED_B} <c@x.example>"], bcc=["d@y.example"]),
    "filename-rfc2231": command(attachments=[attachment(RFC2231)]),
    "content-type-crlf": command(attachments=[attachment("a", "text/plain\r\nX-Evil: 1")]),
    "filename-spaces": command(attachments=[attachment(" a.pdf"), attachment("a.pdf ")]),
    "long-subject": command(subject="Grüße aus Köln — " * 60, text="y" * 1500),
    "unclosed-to": command(to=["Ada <ada@example.com", "b@x.example"]),
    "idna-codec-subject": command(subject="=?idna?Q?a?="),
    "subject-b64-lenient": command(subject=LENIENT_B),
}


def _nested(depth: int) -> bytes:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    return head + b"Content-Type: text/plain\r\n\r\nhi\r\n"


def _message(*headers: bytes, body: bytes = b"hello\r\n") -> bytes:
    return b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


RECEIVED = {
    "subject-encoded-b": _message(b"From: a@x.example", b"Subject: " + ENCODED_B.encode()),
    "subject-b64-lenient": _message(b"Subject: " + LENIENT_B.encode()),
    "from-unclosed": _message(b'From: "Ada <ada@x.example', b"To: (b@y.example"),
    "message-id-open": _message(b"Message-ID: <", b"In-Reply-To: <<<", b"References: <a@b> <"),
    "filename-rfc2231": _message(
        b"Content-Type: multipart/mixed; boundary=b",
        body=b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b"filename*=" + RFC2231.encode() + b"\r\n\r\nx\r\n--b--\r\n",
    ),
    "nested-5": _nested(5),
    "nested-25": _nested(25),
    "rfc822-nested": b"Content-Type: message/rfc822\r\n\r\n" * 30 + b"\r\nhi",
    "quadratic-from": b"From: " + b'"' * 64_000 + b"\r\n\r\n",
    "quadratic-content-type": b"Content-Type: text/plain; a=" + b'"' * 64_000 + b"\r\n\r\n",
    "recursive-comment": b"To: " + b"(" * 4000 + b"\r\n\r\n",
    "folded-subject": b"Subject: a" + b"\r\n b" * 3000 + b"\r\n\r\n",
    "surrogate-charset": _message(
        b"Content-Type: text/plain; charset=unicode_escape", body=b"\\ud800"
    ),
    "raw-8bit": _message(b"Subject: caf\xc3\xa9 \xff", b"From: \xe9 <a@b.example>"),
    "digest": _message(
        b"Content-Type: multipart/digest; boundary=d",
        body=b"--d\r\n\r\nSubject: one\r\n\r\nx\r\n--d\r\n\r\nSubject: two\r\n\r\ny\r\n--d--\r\n",
    ),
    "no-boundary": _message(b"Content-Type: multipart/mixed", body=b"--\r\n--x--\r\n"),
    "bad-base64": _message(b"Content-Transfer-Encoding: base64", body=b"====\x00\xff!!"),
    "authentication-results": _message(
        b"Authentication-Results: mx.acme.example; spf=pass; dkim=fail (bad) header.d=x",
        b"Authentication-Results: mx.acme.example; spf=fail; dkim=pass",
        b"From: =?utf-8?b?QWNtZQ==?= <billing@xn--acm-tdd.example>, ceo@acme.example",
    ),
    "authentication-results-raw-8bit": _message(
        b'Authentication-Results: "mx.acme.example\xff" (\xe9; spf=pass',
        b'From: "acme.example" <x@\xd0\xb0cme.example>',
    ),
}


_TRUSTED = "mx.acme.example"  # fuzz.contracts.TRUSTED_AUTHSERV_ID; the agent is at acme.example
_RFC_B7 = (
    "foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for"
    " it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised"
    " me) = (as I wasn't expecting it) 1362471462"
)
SCREENING: dict[str, tuple[str, str, list[str]]] = {  # display name, From domain, headers
    "rfc-comment-heavy": ("", "example.net", [_RFC_B7]),
    "trusted-over-forged": (
        "",
        "acme.example",
        [f"{_TRUSTED}; spf=fail; dkim=none", f"{_TRUSTED}; spf=pass; dkim=pass; dmarc=pass"],
    ),
    "stranger-only": ("", "acme.example", ["evil.example; spf=pass; dkim=pass; dmarc=pass"]),
    "quoted-and-folded": ("", "x.example", [f'"{_TRUSTED}"\r\n\t1; spf=pass reason="a;b=c"']),
    "nested-comments": ("", "x.example", [f"{_TRUSTED}; spf=" + "(" * 5000 + "pass"]),
    "open-quote": ("", "x.example", [f'{_TRUSTED}; spf="' + "a" * 9000]),
    "many-headers": (
        "",
        "x.example",
        ["evil.example; dkim=pass"] * 200 + [f"{_TRUSTED}; dkim=pass"],
    ),
    "many-results": ("", "x.example", [f"{_TRUSTED}" + "; dkim=fail" * 3000 + "; dkim=pass"]),
    "microsoft-no-id": ("", "x.example", ["spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=x"]),
    "edit-distance": ("", "acrne.example", []),
    "punycode": ("", "xn--acm-tdd.example", []),
    "punycode-broken": ("", "xn--zz-.xn--.xn--a.example", []),
    "cyrillic": ("", "\u0430cm\u0435.\u0435x\u0430mple", []),
    "display-name": ("billing@acme.example", "evil.example", []),
    "display-name-long": ("acme.example " * 200, "evil.example", []),
    "long-domain": ("", "a" * 63 + "." + "b" * 300, []),
    "combining-marks": ("", "a\u0301" * 100 + ".example", []),
}


def _screening(display_name: str, domain: str, headers: list[str]) -> bytes:
    return FIELD.join(encode_text(value) for value in (display_name, domain, *headers))


def _autoconfig(*servers: str, head: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    return (
        f'{head}<clientConfig version="1.1"><emailProvider id="acme.example">'
        + "".join(servers)
        + "</emailProvider></clientConfig>"
    ).encode()


def _server(kind: str, kind_type: str, host: str, port: str, socket: str, user: str) -> str:
    return (
        f'<{kind} type="{kind_type}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType><username>{user}</username></{kind}>"
    )


_IMAP = _server("incomingServer", "imap", "imap.%EMAILDOMAIN%", "993", "SSL", "%EMAILLOCALPART%")
_SMTP = _server("outgoingServer", "smtp", "smtp.acme.example", "587", "STARTTLS", "%EMAILADDRESS%")
_LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
AUTOCONFIG = {
    "thunderbird": _autoconfig(
        _server("incomingServer", "pop3", "pop.acme.example", "995", "SSL", "%EMAILADDRESS%"),
        _server("incomingServer", "imap", "imap.acme.example", "143", "plain", "%EMAILADDRESS%"),
        _IMAP,
        _SMTP,
    ),
    "plain-only": _autoconfig(
        _server("incomingServer", "imap", "imap.acme.example", "143", "plain", "x"),
        _server("outgoingServer", "smtp", "smtp.acme.example", "25", "plain", "x"),
    ),
    "ports-out-of-range": _autoconfig(
        _server("incomingServer", "imap", "imap.acme.example", "0", "SSL", "x"),
        _server("outgoingServer", "smtp", "smtp.acme.example", "65536", "SSL", "x"),
        _server("outgoingServer", "smtp", "smtp.acme.example", "٥٨٧", "STARTTLS", "x"),
    ),
    "username-control": _autoconfig(
        _server("incomingServer", "imap", "imap.acme.example", "993", "SSL", "a&#x85;b&#10;c")
    ),
    "host-placeholders": _autoconfig(
        _server("incomingServer", "imap", "%EMAILLOCALPART%.acme.example", "993", "SSL", "x"),
        _SMTP,
    ),
    "nested-servers": _autoconfig(f'<incomingServer type="imap">{_IMAP}</incomingServer>'),
    "billion-laughs": _autoconfig(_IMAP, head=f'<!DOCTYPE c [<!ENTITY l0 "ha">{_LAUGHS}]>')
    + b"&l9;",
    "external-entity": _autoconfig(
        _server("incomingServer", "imap", "&x;", "993", "SSL", "x"),
        head='<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    ),
    "undeclared-entity": _autoconfig(_server("incomingServer", "imap", "&x;", "993", "SSL", "x")),
    "utf-16": _autoconfig(_IMAP, head="").decode().encode("utf-16"),
    "bogus-encoding": _autoconfig(_IMAP, head='<?xml version="1.0" encoding="x-bogus"?>'),
    "cdata-doctype": _autoconfig(_IMAP.replace("SSL", "<![CDATA[SSL]]><!--<!DOCTYPE x>-->")),
}


def seeds() -> dict[str, dict[str, bytes]]:
    """Target → seed name → bytes, in the targets' formats."""
    return {
        "headers": {name: encode_text(value) for name, value in HEADERS.items()},
        "addresses": {
            name: FIELD.join(encode_text(v) for v in values) for name, values in ADDRESSES.items()
        },
        "mime": {name: encode_command(cmd) for name, cmd in COMMANDS.items()},
        "received": RECEIVED,
        "screening": {name: _screening(*values) for name, values in SCREENING.items()},
        "autoconfig": AUTOCONFIG,
    }


def main() -> None:
    corpus = Path(__file__).resolve().parent / "corpus"
    for target, named in seeds().items():
        folder = corpus / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (folder / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
