"""What each entry point promises for any input, as assertions (issue 9: bad input is a class).

The same checks serve the Hypothesis properties of ``tests/unit/test_properties_*.py``, the atheris
targets of :mod:`fuzz.targets` and the corpus replay, so a counterexample found by one is a failing
case for all. A check returns quietly when the entry point kept its promise; a broken promise is an
AssertionError, and an exception the entry point must never raise escapes as it is.

Each check is independent of the code it checks: the message is read back with the standard
library's own parser, and an unsafe character is whatever ``str.splitlines`` breaks on, a control
or a lone surrogate, not what :mod:`mailbridge.shared.headers` happens to refuse.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.policy
import email.utils
import time
import urllib.parse
from datetime import UTC, datetime
from email.message import EmailMessage

from mailbridge.config_api.domain.autoconfig import parse_autoconfig
from mailbridge.config_api.domain.detection import DetectedSettings, Finding
from mailbridge.config_api.domain.email_config import ServerSettings
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.domain.lookalike import Sender
from mailbridge.mail_worker.domain.parse import UnparseableMessage, parse
from mailbridge.mail_worker.domain.screening import ScreeningContext, screen
from mailbridge.shared.addresses import AddressError, RecipientRule, parse_recipients
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.headers import REFERENCES_KEPT, HeaderValueError, check_header_text
from mailbridge.shared.messages import MessageReceived, SendMessage
from mailbridge.shared.messages.screening import AuthVerdict, Screening

SENDER = "agent@mailbridge.example"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOP_LEVEL_HEADERS = frozenset(
    {
        "message-id",
        "date",
        "from",
        "to",
        "cc",
        "subject",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
PART_HEADERS = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "mime-version"}
)
MAX_LINE_OCTETS = 998  # RFC 5322 §2.1.1, without the CR LF
MAX_SUBJECT, MAX_FILENAME = 998, 255  # what the HTTP API accepts
MAX_PARSE_SECONDS = 2.0  # for at most 64 KiB; a normal message takes milliseconds
AUTOCONFIG_DOMAIN, AUTOCONFIG_ADDRESS = "acme.example", "jo.doe@acme.example"
MAX_USERNAME = 320  # what the HTTP API accepts
TRUSTED_AUTHSERV_ID, OWN_ADDRESS = "mx.acme.example", "agent@acme.example"
SCREENING = ScreeningContext.of(TRUSTED_AUTHSERV_ID, OWN_ADDRESS)
MAX_SCREEN_SECONDS = 1.0  # for 64 KiB of headers; an ordinary message takes a millisecond
_POLICY = email.policy.default


def unsafe(char: str) -> bool:
    """A character that ends, or controls, a header line for some reader of it."""
    code = ord(char)
    return (
        (code < 0x20 and char != "\t")
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or len(f"a{char}b".splitlines()) > 1
    )


def first_unsafe(text: str) -> str | None:
    return next((char for char in text if unsafe(char)), None)


def keys(values: list[str]) -> list[str]:
    return [recipient.key for recipient in parse_recipients(values)]


def folded(value: object) -> str:
    return " ".join(str(value).split())


# --- the shared address parser ---------------------------------------------------------------


def check_recipients(values: list[str]) -> None:
    """``parse_recipients``: a list or AddressError; what it answers reads back the same."""
    try:
        found = parse_recipients(values)
    except AddressError:
        return
    assert len({r.key for r in found}) == len(found), f"repeated recipients {found}"
    for recipient in found:
        again = parse_recipients([recipient.envelope])
        assert [r.key for r in again] == [recipient.key], (recipient, recipient.envelope, again)


def check_recipient_forms(values: list[str]) -> None:
    """Beyond the contract, what the worker and policy do with a recipient: its header form (what
    mime writes into To and Cc) reads back as it, and an allowlist names it by its address or its
    domain."""
    try:
        found = parse_recipients(values)
    except AddressError:
        return
    for recipient in found:
        header = recipient.header_form()
        assert keys([header]) == [recipient.key], (recipient, header)
        assert RecipientRule.parse(recipient.envelope).allows(recipient), recipient
        assert RecipientRule.parse(recipient.domain).allows(recipient), recipient


def check_rule(entry: str) -> None:
    """``RecipientRule.parse``: a rule or AddressError; a rule's rendering is the same rule."""
    try:
        rule = RecipientRule.parse(entry)
    except AddressError:
        return
    assert RecipientRule.parse(rule.render()) == rule, (entry, rule)


# --- the shared header-text check ------------------------------------------------------------


def check_header_value(value: str) -> None:
    """``check_header_text``: the value unchanged or HeaderValueError; an accepted value is safe
    however a mail library decodes it, and cannot add a header line or a part header."""
    answer = _checked(value)
    if isinstance(answer, HeaderValueError):
        assert "subject" in str(answer), answer  # the message names the field
        return
    assert answer == value
    assert first_unsafe(value) is None, value
    for form in decoded_forms(value):
        assert first_unsafe(form) is None, (value, form)
    assert_no_injection(value)


def _checked(value: str) -> str | HeaderValueError:
    try:
        return check_header_text(value, "subject")
    except HeaderValueError as refused:
        return refused


def decoded_forms(value: str) -> list[str]:
    """``value`` (itself safe) as the standard library's readers decode it: a header, old-style
    encoded words, and an RFC 2231 parameter value. A reader that fails has no form to check."""
    forms = []
    with contextlib.suppress(Exception):  # the library's parser failing is not this concern
        forms.append(str(_POLICY.header_factory("Subject", value)))
    try:
        parts = email.header.decode_header(value)
        forms.append("".join(_decoded_part(part, charset) for part, charset in parts))
    except (email.errors.HeaderParseError, ValueError):
        pass
    if value.count("'") >= 2:  # charset'language'percent-escaped, as in filename*=
        charset, _, text = value.split("'", 2)
        forms.append(_decoded_part(urllib.parse.unquote_to_bytes(text), charset))
    return forms


def _decoded_part(part: bytes | str, charset: str | None) -> str:
    """Bytes in their charset; in an unknown one as ASCII, as the library reads them."""
    if isinstance(part, str):
        return part
    try:
        return part.decode(charset or "ascii", errors="replace")
    except (LookupError, ValueError):
        return part.decode("ascii", errors="replace")


def assert_no_injection(value: str) -> None:
    """The value as a Subject and as a file name, serialized as the worker does and read back;
    only as long as the API lets them be (the library's folding is quadratic beyond)."""
    message = EmailMessage(policy=_POLICY)
    try:
        message["Subject"] = value[:MAX_SUBJECT]
        message.set_content("hello")
        filename = value[:MAX_FILENAME]
        message.add_attachment(b"x", maintype="application", subtype="pdf", filename=filename)
        raw = message.as_bytes(policy=email.policy.SMTP.clone(max_line_length=998))
    except (ValueError, TypeError, LookupError, email.errors.MessageError):
        return  # the library refused it: nothing was injected
    again = email.message_from_bytes(raw, policy=_POLICY)
    assert sorted(k.lower() for k in again) == ["content-type", "mime-version", "subject"], raw
    for part in again.walk():
        if part is not again:
            assert {k.lower() for k in part} <= PART_HEADERS, raw


# --- the MIME builder ------------------------------------------------------------------------


def check_build(command: SendMessage) -> None:
    """``mime.build``: invalid_input, or bytes that read back exactly as the command meant."""
    outgoing = _built(command)
    if isinstance(outgoing, PermanentError):
        assert outgoing.code is ErrorCode.INVALID_INPUT, outgoing
        return
    raw = outgoing.as_bytes()
    message = email.message_from_bytes(raw, policy=_POLICY)
    assert isinstance(message, EmailMessage)
    _assert_header_block(message, raw)
    _assert_addresses(message, command)
    _assert_thread(message, command)
    assert [p.get_filename() for p in message.walk() if p.is_attachment()] == [
        mime.shown_filename(a.filename) for a in command.attachments
    ], raw
    everyone = parse_recipients([*command.to, *command.cc, *command.bcc])
    assert outgoing.recipients == [r.envelope for r in everyone]
    for line in raw.split(b"\r\n"):
        assert len(line) <= MAX_LINE_OCTETS, f"a line of {len(line)} octets"


def _built(command: SendMessage) -> mime.Outgoing | PermanentError:
    try:
        return mime.build(command, sender=SENDER, now=NOW)
    except PermanentError as refused:
        return refused


def _assert_header_block(message: EmailMessage, raw: bytes) -> None:
    names = [name.lower() for name in message]
    assert set(names) <= TOP_LEVEL_HEADERS, (sorted(set(names) - TOP_LEVEL_HEADERS), raw)
    assert len(names) == len(set(names)), f"a repeated header in {names}"
    for part in message.walk():
        if part is not message:
            assert {k.lower() for k in part} <= PART_HEADERS, raw


def _assert_addresses(message: EmailMessage, command: SendMessage) -> None:
    assert len(message.get_all("From", [])) == 1
    assert keys(message.get_all("From", [])) == keys([SENDER])
    assert keys(message.get_all("To", [])) == keys(command.to)
    assert keys(message.get_all("Cc", [])) == keys(command.cc)


def _assert_thread(message: EmailMessage, command: SendMessage) -> None:
    meant = mime.reply_subject(command.subject) if command.in_reply_to else command.subject
    assert folded(message.get("Subject", "")) == folded(meant)
    if command.in_reply_to:
        assert folded(message["In-Reply-To"]) == folded(command.in_reply_to)
    else:
        assert message.get("In-Reply-To") is None
    _assert_references(str(message.get("References", "")).split(), command)


def _assert_references(found: list[str], command: SendMessage) -> None:
    """The thread's ids, then the answered one's: each once, in the order of its last place in
    that chain, the newest ``REFERENCES_KEPT`` (which fixes exactly one list)."""
    chain = [*command.references, *([command.in_reply_to] if command.in_reply_to else [])]
    last_place = {ref: place for place, ref in enumerate(chain)}
    assert len(found) == len(set(found)) == min(len(last_place), REFERENCES_KEPT), found
    assert set(found) <= set(chain), found
    assert found == sorted(found, key=last_place.__getitem__), found
    assert not found or found[-1] == chain[-1], found


# --- the received-mail parser ----------------------------------------------------------------


def check_parse(raw: bytes) -> MessageReceived | None:
    """``parse``: an event that JSON carries as it is, or UnparseableMessage, within seconds."""
    started = time.perf_counter()
    try:
        event = parse(raw, agent_id="agent-1", uid=7, uidvalidity=3)
    except UnparseableMessage:
        event = None
    elapsed = time.perf_counter() - started
    assert elapsed < MAX_PARSE_SECONDS, f"{len(raw)} bytes took {elapsed:.1f} s"
    if event is not None:
        wire = event.model_dump_json(by_alias=True)
        assert MessageReceived.model_validate_json(wire) == event
    return event


def check_screened_parse(raw: bytes) -> None:
    """Screening a message changes its event's ``screening`` and nothing else."""
    try:
        plain = parse(raw, agent_id="agent-1", uid=7, uidvalidity=3)
    except UnparseableMessage:
        return
    screened = parse(raw, agent_id="agent-1", uid=7, uidvalidity=3, screening_context=SCREENING)
    assert screened.screening is not None
    unscreened = {"screening", "event_id", "occurred_at"}  # the last two: new in every event
    assert screened.model_dump(exclude=unscreened) == plain.model_dump(exclude=unscreened)


# --- inbound screening -----------------------------------------------------------------------


def check_screening(headers: list[str], sender: Sender) -> Screening:
    """``screen``: a screening JSON carries, within a second, whatever the headers and the From.
    Verdicts come only from a header that names the trusted authserv-id; the agent's own domain
    is never a look-alike of itself."""
    started = time.perf_counter()
    found = screen(headers, [sender], SCREENING)
    elapsed = time.perf_counter() - started
    assert elapsed < MAX_SCREEN_SECONDS, f"{sum(map(len, headers))} characters took {elapsed:.1f} s"
    assert Screening.model_validate_json(found.model_dump_json()) == found
    if not any(TRUSTED_AUTHSERV_ID in header.casefold() for header in headers):
        assert found.authserv_id is None, (headers, found)
    if found.authserv_id is None:
        assert {found.spf, found.dkim, found.dmarc} == {AuthVerdict.UNKNOWN}, found
    else:
        assert found.authserv_id == TRUSTED_AUTHSERV_ID, found
    if sender.domain.strip().rstrip(".").casefold() == SCREENING.own_domain:
        assert found.lookalike_sender is None, (sender, found)
    if found.lookalike_sender is not None:
        assert found.lookalike_sender.resembles == SCREENING.own_domain, found
        assert found.lookalike_sender.sender_domain == sender.domain, found
    return found


# --- the autoconfig document parser ----------------------------------------------------------


def check_autoconfig(document: bytes) -> Finding | None:
    """``parse_autoconfig``: a finding or None, within seconds. A finding names an IMAP or an SMTP
    server (or both) that a save body takes as it is, over TLS or STARTTLS only, at no host a
    placeholder is left in; and its user name, rendered for an address, is plain text."""
    started = time.perf_counter()
    found = parse_autoconfig(document, AUTOCONFIG_DOMAIN)
    elapsed = time.perf_counter() - started
    assert elapsed < MAX_PARSE_SECONDS, f"{len(document)} bytes took {elapsed:.1f} s"
    if found is None:
        return None
    servers = [server for server in (found.imap, found.smtp) if server is not None]
    assert found.source == "autoconfig", found
    assert servers, found
    for server in servers:
        assert ServerSettings.model_validate(server.model_dump()) == server, server
        assert server.security in ("ssl", "starttls"), server
        assert "%" not in server.host, server
    shown = found.for_address(AUTOCONFIG_ADDRESS)
    assert shown.username, shown
    assert len(shown.username) <= MAX_USERNAME, shown.username
    assert first_unsafe(shown.username) is None, shown.username
    assert "\t" not in shown.username, shown.username  # a save body's user name takes no control
    assert DetectedSettings.model_validate_json(shown.model_dump_json()) == shown
    return found
