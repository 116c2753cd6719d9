"""Reading ``Authentication-Results`` (RFC 8601) from its raw text: bounded, never raising.

Only what screening needs: the authserv-id, and each method's result. The grammar (§2.2)::

    authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
                      ( no-result / 1*resinfo ) [CFWS] CRLF
    resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
    methodspec      = [CFWS] method [CFWS] "=" [CFWS] result   ; method may carry "/" version

Comments (nested, with quoted pairs) are dropped and quoted strings read as one value, so a ";" or
"=" inside either never splits anything; whatever follows a methodspec (reason, properties) is
skipped. The standard library's header parser is not used (quadratic and crashing cases, see
``parse.py``): this is one left-to-right pass over at most :data:`MAX_HEADER_CHARS` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from mailbridge.shared.messages.screening import AuthVerdict

MAX_HEADER_CHARS = 8192  # one header is read this far (many DKIM signatures still fit)
MAX_HEADERS = 32  # Authentication-Results looked at per message, from the top
MAX_RESULTS = 64  # resinfo items read from the trusted header

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r'[^\s()";=/]+')
_PUNCTUATION = frozenset(";=/")
_VERDICTS = {verdict.value: verdict for verdict in AuthVerdict} | {
    "hardfail": AuthVerdict.FAIL  # RFC 5451's word for SPF's fail, renamed by RFC 7001
}


class _Token(NamedTuple):
    text: str
    punctuation: bool  # one of ";", "=", "/" (a quoted ";" is a value, not this)


@dataclass(frozen=True)
class AuthenticationResults:
    authserv_id: str
    results: tuple[tuple[str, str], ...]  # (method, result), lower-cased, in the header's order

    def verdict(self, method: str) -> AuthVerdict:
        """The method's first result, but ``pass`` if any passed (several DKIM signatures);
        ``unknown`` when the header does not say, or says a word RFC 8601 does not define."""
        said = [result for name, result in self.results if name == method]
        if not said:
            return AuthVerdict.UNKNOWN
        return AuthVerdict.PASS if "pass" in said else _VERDICTS.get(said[0], AuthVerdict.UNKNOWN)


def trusted(headers: Sequence[str], trusted_id: str) -> AuthenticationResults | None:
    """The topmost header (the first of ``headers``, read top down) whose authserv-id is
    ``trusted_id``, or None; an empty ``trusted_id`` trusts none. The receiving server adds its
    header on top of what arrived (RFC 8601 §5), so one further down with the same id came with
    the message: a sender wrote it."""
    if not trusted_id:
        return None
    wanted = trusted_id.casefold()
    for text in headers[:MAX_HEADERS]:
        if (authserv_id(text) or "").casefold() == wanted:
            return read(text)
    return None


def authserv_id(text: str) -> str | None:
    """The header's authserv-id (a token or a quoted string), or None when it has none."""
    head = next(_segments(_tokens(text[:MAX_HEADER_CHARS])), [])
    return _authserv_id(head)


def read(text: str) -> AuthenticationResults | None:
    """The header's authserv-id and results, or None when it has no authserv-id."""
    segments = _segments(_tokens(text[:MAX_HEADER_CHARS]))
    found = _authserv_id(next(segments, []))
    if found is None:
        return None
    specs = (_methodspec(segment) for segment in islice(segments, MAX_RESULTS))
    return AuthenticationResults(found, tuple(spec for spec in specs if spec is not None))


def _authserv_id(head: list[_Token]) -> str | None:
    """A value, then at most a version number: anything else (Microsoft 365 writes no id and
    starts at ``spf=``) is not an authserv-id."""
    if not head or head[0].punctuation or not head[0].text:
        return None
    if len(head) > 2 or (len(head) == 2 and not head[1].text.isdigit()):
        return None
    return head[0].text


def _methodspec(segment: list[_Token]) -> tuple[str, str] | None:
    """``method [/ version] = result`` at the start of a segment; None for ``none`` or junk."""
    if not segment or segment[0].punctuation:
        return None
    rest = segment[1:]
    if rest and rest[0] == ("/", True):
        rest = rest[2:]
    if len(rest) < 2 or rest[0] != ("=", True) or rest[1].punctuation:
        return None
    return segment[0].text.lower(), rest[1].text.lower()


def _segments(tokens: Iterator[_Token]) -> Iterator[list[_Token]]:
    """The tokens between one ";" and the next."""
    segment: list[_Token] = []
    for token in tokens:
        if token == (";", True):
            yield segment
            segment = []
        else:
            segment.append(token)
    yield segment


def _tokens(text: str) -> Iterator[_Token]:
    at = 0
    while at < len(text):
        char = text[at]
        if char == "(":
            at = _after_comment(text, at)
        elif char == '"':
            value, at = _quoted(text, at)
            yield _Token(value, False)
        elif char in _PUNCTUATION:
            yield _Token(char, True)
            at += 1
        elif space := _SPACE.match(text, at):
            at = space.end()
        else:
            word = _WORD.match(text, at)
            if word:
                yield _Token(word.group(), False)
            at = word.end() if word else at + 1  # a ")" that closes nothing: skipped


def _after_comment(text: str, at: int) -> int:
    """Where the comment opening at ``at`` ends (nested ones within it); the text's end if it
    never closes."""
    depth = 0
    while at < len(text):
        char = text[at]
        if char == "\\":
            at += 1  # a quoted pair: the next character is literal
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    return at


def _quoted(text: str, at: int) -> tuple[str, int]:
    """The quoted string opening at ``at`` without its quotes and quoted pairs, and where it
    ends (the text's end if it never closes)."""
    value: list[str] = []
    at += 1
    while at < len(text) and text[at] != '"':
        if text[at] == "\\" and at + 1 < len(text):
            at += 1
        value.append(text[at])
        at += 1
    return "".join(value), at + 1
