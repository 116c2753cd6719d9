"""What a caller sends back to read a message: a ref or cursor it was given reads back as the same
message, anything else is ``invalid_input``; and a folder name, whatever its characters, reaches
the IMAP server as one quoted string naming that folder, never as another command."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.mail_worker.adapters.imap_commands import quoted_mailbox
from mailbridge.mail_worker.domain.message_ref import (
    MAX_UID,
    MessageRef,
    PageCursor,
    message_ref,
    page_cursor,
)
from mailbridge.shared.errors import ErrorCode, MailbridgeError

FOLDERS = st.text(min_size=1, max_size=200)
NUMBERS = st.integers(min_value=1, max_value=MAX_UID)


@given(FOLDERS, NUMBERS, NUMBERS)
def test_a_ref_given_out_reads_back_as_the_same_message(
    folder: str, validity: int, uid: int
) -> None:
    ref = MessageRef(folder, validity, uid)
    assert re.fullmatch(r"[A-Za-z0-9._\-]+", ref.encoded()), "fits a URL path segment as it is"
    assert message_ref(ref.encoded()) == ref


@given(NUMBERS, NUMBERS)
def test_a_cursor_given_out_reads_back(validity: int, uid: int) -> None:
    assert page_cursor(PageCursor(validity, uid).encoded()) == PageCursor(validity, uid)


@given(st.text(max_size=300))
def test_any_other_text_is_a_ref_or_invalid_input(text: str) -> None:
    for read in (message_ref, page_cursor):
        refusal = None
        try:
            read(text)
        except MailbridgeError as refused:
            refusal = refused.code
        assert refusal in (None, ErrorCode.INVALID_INPUT)


@pytest.mark.parametrize(
    "text",
    ["0.1.SU5CT1g", f"1.{MAX_UID + 1}.SU5CT1g", "1.1.", "1.1.A", "1.1.SU5CT1g=", "1.1.__8", ""],
)
def test_refs_that_name_nothing_are_refused(text: str) -> None:
    with pytest.raises(MailbridgeError) as refused:
        message_ref(text)
    assert refused.value.code is ErrorCode.INVALID_INPUT


@given(FOLDERS)
def test_any_folder_name_is_one_quoted_imap_string_naming_it(folder: str) -> None:
    quoted = quoted_mailbox(folder)
    assert re.fullmatch(r'"(?:[ !#-\[\]-~]|\\["\\])*"', quoted), quoted  # printable, escaped
    assert _decoded(quoted) == folder


def test_non_ascii_names_are_modified_utf7_as_rfc_3501_shows() -> None:
    assert quoted_mailbox("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert quoted_mailbox("a&b") == '"a&-b"'


def _decoded(quoted: str) -> str:
    """The folder name back from the quoted modified UTF-7 (RFC 3501 §5.1.3)."""
    text = re.sub(r"\\(.)", r"\1", quoted[1:-1])

    def run(match: re.Match[str]) -> str:
        if match[1] == "":
            return "&"
        encoded = match[1].replace(",", "/")
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", run, text)
