"""XOAUTH2 for IMAP and SMTP: the initial response, and how each server's refusal is read."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import aioimaplib
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from mailbridge.mail_worker.adapters import imap, smtp
from mailbridge.mail_worker.adapters.xoauth2 import (
    XOAuth2Login,
    challenge_fields,
    initial_response,
    login_refused,
    refused_code,
)
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, Provider, ServerEndpoint, TokenResource

GMAIL_CHALLENGE = base64.b64encode(
    b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
)
DOVECOT_CHALLENGE = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}')
OAUTHBEARER_CHALLENGE = b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="  # {"status":"invalid_token"}
SCOPE_CHALLENGE = base64.b64encode(b'{"status":"insufficient_scope","scope":"mail"}')
ACCOUNT = Credentials(
    provider=Provider.GOOGLE,
    email="agent@gmail.com",
    imap=ServerEndpoint(host="imap.gmail.com", port=993, security="ssl"),
    smtp=ServerEndpoint(host="smtp.gmail.com", port=587, security="starttls"),
    xoauth2=True,
    agent_id="agent-1",
)


def test_the_initial_response_is_the_documented_sasl_string() -> None:
    encoded = initial_response(
        "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    )
    assert base64.b64decode(encoded) == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        b"\x01\x01"
    )
    # Google's own example of the same string (developers.google.com/gmail/imap/xoauth2-protocol)
    assert encoded.startswith("dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5")


@pytest.mark.parametrize(
    ("challenge", "code"),
    [
        (GMAIL_CHALLENGE, ErrorCode.OAUTH_TOKEN_REVOKED),
        (DOVECOT_CHALLENGE, ErrorCode.OAUTH_TOKEN_REVOKED),
        (OAUTHBEARER_CHALLENGE, ErrorCode.OAUTH_TOKEN_REVOKED),
        (SCOPE_CHALLENGE, ErrorCode.OAUTH_SCOPE_MISSING),
        (base64.b64encode(b'{"status":"403","scope":"x"}'), ErrorCode.OAUTH_SCOPE_MISSING),
        (None, ErrorCode.OAUTH_TOKEN_REVOKED),  # Microsoft: no challenge, only NO / 535 5.7.3
        (b"not base64 at all", ErrorCode.OAUTH_TOKEN_REVOKED),
    ],
)
def test_a_refusal_is_read_from_the_challenge_fields(
    challenge: bytes | None, code: ErrorCode
) -> None:
    assert refused_code(challenge) is code


def test_the_message_text_never_decides() -> None:
    scope_words = base64.b64encode(b'{"status":"401","detail":"insufficient_scope"}')
    assert refused_code(scope_words) is ErrorCode.OAUTH_TOKEN_REVOKED


@given(st.binary(max_size=6000))
def test_any_challenge_bytes_give_a_taxonomy_code(challenge: bytes) -> None:
    assert refused_code(challenge) in {ErrorCode.OAUTH_TOKEN_REVOKED, ErrorCode.OAUTH_SCOPE_MISSING}
    error = login_refused(ErrorCode.AUTH_FAILED, challenge, "refused")
    assert isinstance(error, PermanentError)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
)


@given(JSON_VALUES)
def test_any_json_in_a_challenge_gives_a_taxonomy_code(value: object) -> None:
    challenge = base64.b64encode(json.dumps(value).encode())
    assert isinstance(challenge_fields(challenge), dict)
    assert refused_code(challenge) in {ErrorCode.OAUTH_TOKEN_REVOKED, ErrorCode.OAUTH_SCOPE_MISSING}


def test_a_deeply_nested_challenge_is_no_exception() -> None:
    assert challenge_fields(base64.b64encode(b"[" * 3000)) == {}


def test_busy_servers_and_a_tenant_without_smtp_auth_stay_so() -> None:
    assert isinstance(login_refused(ErrorCode.PROVIDER_THROTTLED, None, "x"), RetryableError)
    disabled = login_refused(ErrorCode.SMTP_AUTH_DISABLED, GMAIL_CHALLENGE, "x")
    assert disabled.code is ErrorCode.SMTP_AUTH_DISABLED


@dataclass
class Tokens:
    asked: list[tuple[str, TokenResource]] = field(default_factory=list)

    async def access_token(
        self, agent_id: str, *, resource: TokenResource = TokenResource.API
    ) -> SecretStr:
        self.asked.append((agent_id, resource))
        return SecretStr("ya29.mail-token")


async def test_a_login_asks_the_broker_for_the_agents_mail_token() -> None:
    tokens = Tokens()
    encoded = await XOAuth2Login(tokens).initial_response(ACCOUNT)
    assert tokens.asked == [("agent-1", TokenResource.MAIL)]
    assert (
        base64.b64decode(encoded) == b"user=agent@gmail.com\x01auth=Bearer ya29.mail-token\x01\x01"
    )


async def test_no_token_source_or_agent_is_an_internal_error() -> None:
    with pytest.raises(PermanentError) as raised:
        await XOAuth2Login(None).initial_response(ACCOUNT)
    assert raised.value.code is ErrorCode.INTERNAL


def _imap_refusal(*lines: bytes) -> MailbridgeError:
    return imap._login_refusal(ACCOUNT, aioimaplib.Response("NO", list(lines)))


def test_imap_gmail_refusal_with_its_challenge_is_revoked() -> None:
    refused = _imap_refusal(b"+ " + GMAIL_CHALLENGE, b"[AUTHENTICATIONFAILED] Invalid credentials")
    assert refused.code is ErrorCode.OAUTH_TOKEN_REVOKED


def test_imap_microsoft_refusal_without_challenge_is_revoked() -> None:
    assert _imap_refusal(b"AUTHENTICATE failed.").code is ErrorCode.OAUTH_TOKEN_REVOKED


def test_imap_scope_challenge_is_scope_missing() -> None:
    assert _imap_refusal(b"+ " + SCOPE_CHALLENGE, b"failed").code is ErrorCode.OAUTH_SCOPE_MISSING


def test_imap_password_refusal_is_unchanged() -> None:
    password = ACCOUNT.model_copy(update={"xoauth2": False, "password": SecretStr("p")})
    refused = imap._login_refusal(password, aioimaplib.Response("NO", [b"+ " + SCOPE_CHALLENGE]))
    assert refused.code is ErrorCode.AUTH_FAILED


@dataclass
class Reply:
    code: int
    message: str


@dataclass
class SmtpServer:
    """Stands in for aiosmtplib.SMTP: answers each command with the next reply."""

    replies: list[Reply]
    sent: list[tuple[bytes, ...]] = field(default_factory=list)
    is_ehlo_or_helo_needed: bool = False

    async def ehlo(self) -> None:
        raise AssertionError("EHLO was done at connect")

    async def execute_command(self, *args: bytes) -> Reply:
        self.sent.append(args)
        return self.replies.pop(0)


async def _smtp_login(*replies: Reply) -> tuple[SmtpServer, ErrorCode | None]:
    server = SmtpServer(list(replies))
    try:
        await smtp._xoauth2_login(server, "aW5pdGlhbA==")  # type: ignore[arg-type]
    except MailbridgeError as exc:
        return server, exc.code
    return server, None


async def test_smtp_accepted() -> None:
    server, code = await _smtp_login(Reply(235, "2.7.0 Accepted"))
    assert code is None
    assert server.sent == [(b"AUTH", b"XOAUTH2", b"aW5pdGlhbA==")]


async def test_smtp_gmail_challenge_is_answered_empty_then_revoked() -> None:
    server, code = await _smtp_login(
        Reply(334, GMAIL_CHALLENGE.decode()),
        Reply(535, "5.7.8 Username and Password not accepted."),
    )
    assert server.sent[1] == (b"",)
    assert code is ErrorCode.OAUTH_TOKEN_REVOKED


async def test_smtp_microsoft_535_is_revoked() -> None:
    _, code = await _smtp_login(Reply(535, "5.7.3 Authentication unsuccessful [X.Y.PROD]"))
    assert code is ErrorCode.OAUTH_TOKEN_REVOKED


async def test_smtp_scope_challenge_is_scope_missing() -> None:
    _, code = await _smtp_login(Reply(334, SCOPE_CHALLENGE.decode()), Reply(535, "5.7.8"))
    assert code is ErrorCode.OAUTH_SCOPE_MISSING


async def test_smtp_auth_disabled_for_the_tenant_stays_so() -> None:
    message = "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"
    _, code = await _smtp_login(Reply(535, message))
    assert code is ErrorCode.SMTP_AUTH_DISABLED
