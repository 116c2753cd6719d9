"""The slice of Gmail's search syntax (``q``) a mail-worker uses, plus a few cheap neighbours.

Supported terms: ``rfc822msgid:<id>`` (brackets optional), ``after:`` / ``before:`` with epoch
seconds or ``YYYY/MM/DD`` (UTC here), ``in:inbox|sent``, ``label:NAME``, ``is:unread|read``;
any other word matches the subject or the text, case-insensitively, as Gmail's free text does.
A malformed date is a ``ValueError`` (a 400); nothing else can fail.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from mailbridge.sandbox.mailstore import StoredMessage

Test = Callable[[StoredMessage], bool]
_TERMS = re.compile(r'"[^"]*"|\S+')
_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")


def compile_query(q: str) -> Test:
    """A test every message must pass to match all the terms of ``q``."""
    tests = [_term(term) for term in _TERMS.findall(q)]
    return lambda message: all(test(message) for test in tests)


def _term(term: str) -> Test:
    key, colon, value = term.partition(":")
    key = key.lower()
    if colon and key == "rfc822msgid":
        wanted = value.strip("<>").lower()
        return lambda m: m.envelope.message_id.strip("<>").lower() == wanted
    if colon and key in ("after", "before"):
        moment = _moment(value)
        if key == "after":
            return lambda m: m.received_at >= moment
        return lambda m: m.received_at < moment
    if colon and key in ("in", "label"):
        label = value.upper()
        return lambda m: label in m.labels
    if colon and key == "is" and value.lower() in ("unread", "read"):
        unread = value.lower() == "unread"
        return lambda m: m.unread is unread
    return _free_text(term.strip('"'))


def _moment(value: str) -> float:
    """Epoch seconds, or midnight UTC of a ``YYYY/MM/DD`` date."""
    if value.isascii() and value.isdigit():
        return float(value)
    match = _DATE.fullmatch(value)
    if match is None:
        raise ValueError(f"Invalid date in query: {value!r}")
    year, month, day = (int(part) for part in match.groups())
    try:
        return datetime.datetime(year, month, day, tzinfo=datetime.UTC).timestamp()
    except ValueError as exc:
        raise ValueError(f"Invalid date in query: {value!r}") from exc


def _free_text(word: str) -> Test:
    wanted = word.lower()
    return lambda m: wanted in m.envelope.subject.lower() or wanted in m.envelope.snippet.lower()
