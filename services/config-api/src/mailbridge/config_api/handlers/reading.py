"""config-api's reads on demand: an agent's mailbox listed, one message read, one marked seen,
each asked of a mail-worker (``rpc.mail.messages.*``) once the caller may see the agent.

A worker's refusal keeps its code, message and hint: a ref, cursor or folder that names nothing
(404, 422), a message too large to return raw (413); anything the mail server itself refused or
failed (a login, a timeout) is 502, since the request was fine and the server was not.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.errors import MailServerRefused
from mailbridge.config_api.handlers.agents import load_configured
from mailbridge.config_api.ports import ConfigRepository, MailReader
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    FetchedMessage,
    GetMessage,
    ListMessages,
    MarkedSeen,
    MarkSeen,
    MessageList,
)

_THE_CALLERS = (ErrorCode.NOT_FOUND, ErrorCode.INVALID_INPUT, ErrorCode.MESSAGE_TOO_LARGE)


class _Answer(Protocol):
    @property
    def error(self) -> ErrorInfo | None: ...


AnswerT = TypeVar("AnswerT", bound=_Answer)


async def list_messages(
    request: ListMessages, *, repo: ConfigRepository, mail: MailReader, principal: Principal
) -> MessageList:
    await load_configured(request.agent_id, repo, principal)
    return _answered(await mail.list_messages(request))


async def get_message(
    request: GetMessage, *, repo: ConfigRepository, mail: MailReader, principal: Principal
) -> FetchedMessage:
    await load_configured(request.agent_id, repo, principal)
    return _answered(await mail.get_message(request))


async def mark_seen(
    request: MarkSeen, *, repo: ConfigRepository, mail: MailReader, principal: Principal
) -> MarkedSeen:
    await load_configured(request.agent_id, repo, principal)
    return _answered(await mail.mark_seen(request))


def _answered(answer: AnswerT) -> AnswerT:
    if answer.error is None:
        return answer
    if answer.error.code in _THE_CALLERS:
        raise MailbridgeError.explained(answer.error)
    raise MailServerRefused(answer.error)
