"""Inbound screening for any header text and any From: a screening JSON carries, within a second,
believing only the trusted server (:func:`fuzz.contracts.check_screening`); and screening a
message changes its event's ``screening`` and nothing else."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz import contracts
from mailbridge.mail_worker.domain.lookalike import Sender
from tests import strategies as s


@s.PROPERTIES
@given(st.lists(s.authentication_results, max_size=4), s.display_names, s.sender_domains)
@example(["mx.acme.example; spf=" + "(" * 60_000], "", "acme.example")  # unclosed, deep
@example(['mx.acme.example; spf="' + "\\" * 60_000], "", "acme.example")  # quoted pairs to the end
@example(["evil.example; dkim=pass"] * 5000, "", "acme.example")  # far more headers than read
@example([], "acme.example " * 5000, "evil.example")
@example([], "", "xn--" + "a" * 60_000)
def test_any_headers_and_from_are_screened_within_bounds(
    headers: list[str], display_name: str, domain: str
) -> None:
    contracts.check_screening(headers, Sender(display_name, domain))


@s.PROPERTIES
@given(s.any_received)
@example(
    b"Authentication-Results: mx.acme.example; dmarc=pass\r\n"
    b"From: acme.example <x@\xd0\xb0cme.example>\r\n\r\nhi"
)
def test_screening_changes_nothing_else_in_the_event(raw: bytes) -> None:
    contracts.check_screened_parse(raw)
