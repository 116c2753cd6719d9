"""The shared header-text check, for any text: the value unchanged or HeaderValueError, and an
accepted value adds no header line however a mail library decodes it
(:func:`fuzz.contracts.check_header_value`)."""

from __future__ import annotations

from hypothesis import example, given

from fuzz import contracts
from mailbridge.shared.headers import check_header_text
from tests import strategies as s


@s.PROPERTIES
@given(s.header_text)
@example(s.encoded_word("utf-8", "B", s.INJECTED.encode(), True))  # gh-121650 on this Python
@example("=?utf-8?Q?Hello=0D=0ABcc:_evil@evil.example?=")
@example("utf-8''%0D%0ABcc: evil@evil.example")
@example("=?utf-16?B?AA0ACg==?=")  # CR LF in UTF-16
@example("=?us-ascii?Q?=C2=85?=")  # bytes the charset refuses: the library reads them as UTF-8
@example("=?utf-8?B?-SGVsbG8NCkJjYzogZXZpbEBldmlsLmV4YW1wbGU?=")  # base64 read leniently
@example("=??B?5oKswDIEm=A?=")
def test_any_text_is_accepted_unchanged_and_safe_or_refused(value: str) -> None:
    contracts.check_header_value(value)


@s.PROPERTIES
@given(s.ordinary_text)
def test_text_without_controls_or_encodings_is_accepted(value: str) -> None:
    assert check_header_text(value, "subject") == value
