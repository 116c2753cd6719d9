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
    Refused,
    XOAuth2Login,
    challenge_fields,
    initial_response,
    login_refused,
    refused_code,
)
from mailbridge.mail_worker.ports import TokenGrant
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, Provider, ServerEndpoint, TokenResource

GMAIL_CHALLENGE = base64.b64encode(
    b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
)
DOVECOT_CHALLENGE = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}')
OAUTHBEARER_CHALLENGE = b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="  # {"status":"invalid_token"}
SCOPE_CHALLENGE = base64.b64encode(b'{"status":"insufficient_scope","scope":"mail"}')
GOOGLE_MAIL = "https://mail.google.com/"
OAUTH_CODES = {ErrorCode.OAUTH_TOKEN_REVOKED, ErrorCode.OAUTH_SCOPE_MISSING}
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


@given(st.binary(max_size=6000), st.lists(st.text(max_size=40), max_size=4))
def test_any_challenge_bytes_give_a_taxonomy_code(challenge: bytes, granted: list[str]) -> None:
    assert refused_code(challenge, tuple(granted)) in OAUTH_CODES
    error = login_refused(Refused(ErrorCode.AUTH_FAILED, challenge), "refused")
    assert isinstance(error, PermanentError)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
)


@given(JSON_VALUES)
def test_any_json_in_a_challenge_gives_a_taxonomy_code(value: object) -> None:
    challenge = base64.b64encode(json.dumps(value).encode())
    assert isinstance(challenge_fields(challenge), dict)
    assert refused_code(challenge, (GOOGLE_MAIL,)) in OAUTH_CODES


def test_a_deeply_nested_challenge_is_no_exception() -> None:
    assert challenge_fields(base64.b64encode(b"[" * 3000)) == {}


def test_a_scope_the_server_names_and_the_grant_lacks_is_scope_missing() -> None:
    """Gmail names ``https://mail.google.com/`` whatever the cause: only the grant tells."""
    api_only = ("openid", "https://www.googleapis.com/auth/gmail.modify")
    assert refused_code(GMAIL_CHALLENGE, api_only) is ErrorCode.OAUTH_SCOPE_MISSING
    assert refused_code(GMAIL_CHALLENGE, (*api_only, GOOGLE_MAIL)) is ErrorCode.OAUTH_TOKEN_REVOKED
    assert refused_code(GMAIL_CHALLENGE, ()) is ErrorCode.OAUTH_TOKEN_REVOKED  # grant unknown
    # Dovecot's "mail" is no provider scope: it says nothing of the grant's
    assert refused_code(DOVECOT_CHALLENGE, api_only) is ErrorCode.OAUTH_TOKEN_REVOKED


def test_busy_servers_and_a_tenant_without_smtp_auth_stay_so() -> None:
    busy = login_refused(Refused(ErrorCode.PROVIDER_THROTTLED), "x")
    assert isinstance(busy, RetryableError)
    disabled = login_refused(Refused(ErrorCode.SMTP_AUTH_DISABLED, GMAIL_CHALLENGE), "x")
    assert disabled.code is ErrorCode.SMTP_AUTH_DISABLED


@dataclass
class Tokens:
    """Stands in for the broker: its tokens in turn, each asked for recorded."""

    tokens: list[str] = field(default_factory=lambda: ["ya29.first", "ya29.second"])
    scopes: tuple[str, ...] = ("openid", GOOGLE_MAIL)
    asked: list[tuple[str, TokenResource, str | None]] = field(default_factory=list)

    async def grant(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> TokenGrant:
        self.asked.append((agent_id, resource, refused.get_secret_value() if refused else None))
        token = self.tokens[min(len(self.asked), len(self.tokens)) - 1]
        return TokenGrant(SecretStr(token), self.scopes)


@dataclass
class Server:
    """Answers each XOAUTH2 attempt with the next of ``answers`` (None: logged in)."""

    answers: list[Refused | None]
    tokens_seen: list[str] = field(default_factory=list)

    async def __call__(self, response: str) -> Refused | None:
        self.tokens_seen.append(
            base64.b64decode(response).split(b"Bearer ")[1].strip(b"\x01").decode()
        )
        return self.answers.pop(0)


async def log_in(tokens: Tokens, *answers: Refused | None) -> tuple[Server, ErrorCode | None]:
    server = Server(list(answers))
    try:
        await XOAuth2Login(tokens).log_in(ACCOUNT, server, "refused")
    except MailbridgeError as exc:
        return server, exc.code
    return server, None


REVOKED = Refused(ErrorCode.AUTH_FAILED, GMAIL_CHALLENGE)


async def test_a_login_asks_the_broker_for_the_agents_mail_token() -> None:
    tokens = Tokens()
    server, code = await log_in(tokens, None)
    assert (code, server.tokens_seen) == (None, ["ya29.first"])
    assert tokens.asked == [("agent-1", TokenResource.MAIL, None)]


async def test_a_refused_token_is_refreshed_once_and_the_login_tried_again() -> None:
    tokens = Tokens()
    server, code = await log_in(tokens, REVOKED, None)
    assert (code, server.tokens_seen) == (None, ["ya29.first", "ya29.second"])
    assert tokens.asked[1] == ("agent-1", TokenResource.MAIL, "ya29.first")


async def test_refused_again_is_revoked() -> None:
    _, code = await log_in(Tokens(), REVOKED, REVOKED)
    assert code is ErrorCode.OAUTH_TOKEN_REVOKED


async def test_no_newer_token_is_revoked_without_a_second_attempt() -> None:
    server, code = await log_in(Tokens(tokens=["ya29.only"]), REVOKED)
    assert (code, server.tokens_seen) == (ErrorCode.OAUTH_TOKEN_REVOKED, ["ya29.only"])


@pytest.mark.parametrize(
    ("refused", "code"),
    [
        (Refused(ErrorCode.AUTH_FAILED, SCOPE_CHALLENGE), ErrorCode.OAUTH_SCOPE_MISSING),
        (Refused(ErrorCode.PROVIDER_THROTTLED), ErrorCode.PROVIDER_THROTTLED),
    ],
)
async def test_a_missing_scope_or_a_busy_server_is_no_reason_to_refresh(
    refused: Refused, code: ErrorCode
) -> None:
    tokens = Tokens()
    _, found = await log_in(tokens, refused)
    assert found is code
    assert len(tokens.asked) == 1


async def test_a_grant_without_the_scope_gmail_names_is_scope_missing() -> None:
    _, code = await log_in(Tokens(scopes=("openid", "email")), REVOKED)
    assert code is ErrorCode.OAUTH_SCOPE_MISSING


async def test_no_token_source_or_agent_is_an_internal_error() -> None:
    for login, account in (
        (XOAuth2Login(None), ACCOUNT),
        (XOAuth2Login(Tokens()), ACCOUNT.model_copy(update={"agent_id": None})),
    ):
        with pytest.raises(PermanentError) as raised:
            await login.log_in(account, Server([None]), "refused")
        assert raised.value.code is ErrorCode.INTERNAL


@dataclass
class ImapClient:
    response: aioimaplib.Response

    async def xoauth2_login(self, initial_response: str) -> aioimaplib.Response:
        return self.response


async def imap_attempt(*lines: bytes) -> Refused | None:
    client = ImapClient(aioimaplib.Response("NO", list(lines)))
    return await imap._xoauth2_attempt(client, "aW5pdGlhbA==")  # type: ignore[arg-type]


async def test_imap_gmail_refusal_keeps_its_challenge() -> None:
    refused = await imap_attempt(b"+ " + GMAIL_CHALLENGE, b"[AUTHENTICATIONFAILED] Invalid")
    assert refused == Refused(ErrorCode.AUTH_FAILED, b" " + GMAIL_CHALLENGE)


async def test_imap_microsoft_refusal_has_no_challenge() -> None:
    assert await imap_attempt(b"AUTHENTICATE failed.") == Refused(ErrorCode.AUTH_FAILED)


async def test_imap_acceptance_is_no_refusal() -> None:
    client = ImapClient(aioimaplib.Response("OK", [b"Logged in"]))
    assert await imap._xoauth2_attempt(client, "aW5pdGlhbA==") is None  # type: ignore[arg-type]


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
    """One attempt, read as the login reads it (the grant holding the mail scope)."""
    server = SmtpServer(list(replies))
    refused = await smtp._xoauth2_attempt(server, "aW5pdGlhbA==")  # type: ignore[arg-type]
    if refused is None:
        return server, None
    return server, login_refused(refused, "refused", (GOOGLE_MAIL,)).code


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


@given(st.lists(st.binary(max_size=300), max_size=4))
async def test_any_imap_refusal_lines_give_a_taxonomy_error(lines: list[bytes]) -> None:
    refused = await imap_attempt(*lines)
    assert refused is not None
    error = login_refused(refused, "refused", (GOOGLE_MAIL,))
    assert error.code in OAUTH_CODES | {
        ErrorCode.PROVIDER_THROTTLED,
        ErrorCode.PROVIDER_UNAVAILABLE,
    }


@given(st.integers(100, 599), st.text(max_size=300), st.integers(200, 599), st.text(max_size=80))
async def test_any_smtp_replies_give_a_taxonomy_error_or_a_login(
    code: int, message: str, final: int, final_message: str
) -> None:
    replies = [Reply(code, message), Reply(final, final_message)]
    _, found = await _smtp_login(*replies)
    assert found is None or isinstance(found, ErrorCode)


@dataclass
class ClosedImapClient:
    async def xoauth2_login(self, initial_response: str) -> aioimaplib.Response:
        raise aioimaplib.Abort("connection lost")


async def test_an_imap_session_closed_after_a_refusal_is_provider_unavailable() -> None:
    with pytest.raises(RetryableError) as broke:
        await imap._xoauth2_attempt(ClosedImapClient(), "aW5pdGlhbA==")  # type: ignore[arg-type]
    assert broke.value.code is ErrorCode.PROVIDER_UNAVAILABLE
