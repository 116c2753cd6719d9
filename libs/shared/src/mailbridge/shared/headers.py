"""Text that becomes a header line, checked as the mail libraries will read it.

A raw check for CR and LF is not enough: the standard library decodes RFC 2047 encoded words
(``=?utf-8?B?SGVsbG8NCkJjYzogeA==?=``) when a header is assigned and, before CPython's fix for
gh-121650, serializes the decoded line break as is, which injects a header line. Parameters such
as an attachment's file name may carry RFC 2231 percent-escapes the same way. So a value is refused
when it, or any encoded word or RFC 2231 value inside it once decoded, holds a character that breaks
or controls a line:

- C0 controls but horizontal tab, DEL and the C1 controls (CR, LF and NUL among them);
- what ``str.splitlines`` treats as a line break (U+2028, U+2029, NEL, VT, FF, FS, GS, RS);
- lone surrogates, which cannot be encoded at all.

Used at the API (a clear 422 naming the field) and by the mail-worker (commands also arrive on NATS
from other services), so both refuse the same values.
"""

from __future__ import annotations

import email._encoded_words as _encoded_words  # type: ignore[import-not-found]  # read as it reads
import re
import urllib.parse

_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?\s]*)\?=")
_LINE_BREAKS = "\u2028\u2029"
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9][\w!#$&^.+-]{0,126}/[A-Za-z0-9][\w!#$&^.+-]{0,126}", re.ASCII
)
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>", re.ASCII)  # printable ASCII but < and >
MAX_MESSAGE_ID = 998
MAX_REFERENCES = 100  # ids a send may name as its thread (more is refused)
REFERENCES_KEPT = (
    20  # ids a reply's References header keeps, the newest: a long thread's stays short
)


class HeaderValueError(ValueError):
    """Text that would break out of its header line; the message names the field."""


def check_header_text(value: str, field: str) -> str:
    """``value`` unchanged when it is safe in a header; else HeaderValueError naming ``field``."""
    for text in (value, *_decoded_forms(value)):
        if first_unsafe_character(text) is not None:
            raise HeaderValueError(f"{field} must not contain control characters or line breaks")
    return value


def check_content_type(value: str) -> str:
    """``type/subtype`` in the token characters of RFC 6838, nothing else (no parameters)."""
    if _CONTENT_TYPE.fullmatch(value) is None:
        raise HeaderValueError(f"not a media type such as text/plain: {value[:100]!r}")
    return value


def check_message_id(value: str, field: str = "in_reply_to") -> str:
    """One Message-ID, ``<left@right>``, as ``in_reply_to`` names the message answered and each
    of ``references`` one message of its thread."""
    if len(value) > MAX_MESSAGE_ID or _MESSAGE_ID.fullmatch(value) is None:
        raise HeaderValueError(f"{field} must be one Message-ID such as <abc@example.com>")
    return value


def is_message_id(value: str) -> bool:
    try:
        check_message_id(value)
    except HeaderValueError:
        return False
    return True


def thread_references(references: list[str], in_reply_to: str | None) -> list[str]:
    """A reply's References (RFC 5322 §3.6.4): the original's chain, then the original itself;
    each id once (at its last place, so the parent stays last), the newest ``REFERENCES_KEPT``."""
    chain = [*references, *([in_reply_to] if in_reply_to else [])]
    once = list(reversed(dict.fromkeys(reversed(chain))))
    return once[-REFERENCES_KEPT:]


def first_unsafe_character(text: str) -> str | None:
    return next((char for char in text if _unsafe(char)), None)


def _unsafe(char: str) -> bool:
    code = ord(char)
    if char == "\t":
        return False
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or char in _LINE_BREAKS
        or 0xD800 <= code <= 0xDFFF  # a lone surrogate (a pair would be one code point)
    )


def _decoded_forms(value: str) -> list[str]:
    """Every encoded word of ``value`` decoded, and ``value`` read as an RFC 2231 string."""
    forms = [_decode_word(*match.groups()) for match in _ENCODED_WORD.finditer(value)]
    if value.count("'") >= 2:  # charset'language'value, read as the mail library reads it
        forms += _rfc2231_decoded(value)
    return forms


def _rfc2231_decoded(value: str) -> list[str]:
    """``charset'language'%XX…`` as the mail library may read a parameter: percent-escapes as
    Latin-1 bytes in the named charset, and the raw text's own UTF-8 bytes in that charset (an
    unknown charset: as ASCII)."""
    charset, _, text = value.split("'", 2)
    escapes = urllib.parse.unquote_to_bytes(text.encode(errors="replace"))
    return [_in_charset(escapes, charset), _in_charset(text.encode(errors="replace"), charset)]


def _decode_word(charset: str, encoding: str, payload: str) -> str:
    """The text an encoded word stands for, decoded by the mail library's own B and Q decoders
    (which repair padding and skip stray characters: a stricter decoder would miss what it reads):
    in its charset (an unknown one as ASCII), in UTF-8 (what the library falls back to for bytes
    its charset refused), and the ASCII control bytes among its bytes, so a CR, LF or NUL byte
    shows whatever the charset says."""
    raw = payload.encode("utf-8", errors="surrogatepass")  # bytes whatever the text holds
    decode = _encoded_words.decode_b if encoding in "bB" else _encoded_words.decode_q
    decoded: bytes = decode(raw)[0]
    controls = "".join(chr(byte) for byte in decoded if byte < 0x20 or byte == 0x7F)
    as_utf8 = decoded.decode(errors="replace")
    return _in_charset(decoded, charset) + as_utf8 + controls


def _in_charset(data: bytes, charset: str) -> str:
    """Any name may stand where a charset goes: an unknown one, or a codec that is no charset
    (``idna``, one that refuses ``errors="replace"``), is read as ASCII."""
    try:
        return data.decode(charset.partition("*")[0] or "ascii", errors="replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("ascii", errors="replace")
