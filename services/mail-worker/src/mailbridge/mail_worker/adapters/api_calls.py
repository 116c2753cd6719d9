"""MailboxCalls: one agent's calls to its provider's mailbox API, with everything around a call.

Each call gets the agent's access token from the oauth-broker (asked once, then kept for the
calls of the same command), waits for the mailbox's pacing (its shared "not before", its
concurrent slots, its rate budget), and:
- on a 401, asks the broker once for a fresh token, saying which one was refused, and calls again;
  a second 401 is the grant being revoked;
- on a 429 or 503 with a wait, tells every replica to hold off that mailbox for that long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TypeVar

from pydantic import BaseModel, SecretStr

from mailbridge.mail_worker.adapters.api_http import ApiHttp, Classifier, parsed
from mailbridge.mail_worker.ports import ApiCall, DataStarting, Pacing, TokenGrant, TokenSource
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Provider

T = TypeVar("T")
Answer = TypeVar("Answer", bound=BaseModel)


class Unpaced:
    """Pacing that never waits: for a single process in tests."""

    def call(
        self, agent_id: str, provider: Provider, kind: ApiCall
    ) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    async def hold_off(self, agent_id: str, seconds: float) -> None:
        return None


class MailboxCalls:
    def __init__(
        self,
        http: ApiHttp,
        tokens: TokenSource,
        pacing: Pacing,
        classify: Classifier,
        *,
        agent_id: str,
        provider: Provider,
    ) -> None:
        self._http, self._tokens, self._pacing, self._classify = http, tokens, pacing, classify
        self.agent_id, self._provider = agent_id, provider
        self._grant: TokenGrant | None = None
        self._asking = asyncio.Lock()  # a probe's concurrent calls share one broker rpc
        self._refreshed = False

    async def access(self) -> TokenGrant:
        """The agent's token and its scopes, asked once; the broker's refusal (not authorized,
        revoked) is raised here."""
        async with self._asking:
            if self._grant is None:
                self._grant = await self._tokens.grant(self.agent_id)
            return self._grant

    async def get(
        self,
        url: str,
        answer: type[Answer],
        headers: dict[str, str] | None = None,
        expired: int | None = None,
    ) -> Answer:
        return parsed(await self.get_bytes(url, headers, expired), answer, url)

    async def get_bytes(
        self, url: str, headers: dict[str, str] | None = None, expired: int | None = None
    ) -> bytes:
        return await self._call(
            ApiCall.READ,
            lambda token: self._http.get_bytes(url, token, self._classify, headers, expired),
        )

    async def post(
        self, url: str, body: bytes, content_type: str, sending: DataStarting, kind: ApiCall
    ) -> bytes:
        """``sending`` runs once, however many times the call is made (a refused token)."""
        once = _Once(sending)
        return await self._call(
            kind,
            lambda token: self._http.post(url, token, body, content_type, self._classify, once),
        )

    async def _call(self, kind: ApiCall, call: Callable[[SecretStr], Awaitable[T]]) -> T:
        token = (await self.access()).token
        try:
            return await self._paced(kind, call, token)
        except PermanentError as exc:
            if exc.code is not ErrorCode.OAUTH_TOKEN_REVOKED or self._refreshed:
                raise
        self._refreshed = True  # one fresh token per command: a second 401 is a revoked grant
        self._grant = await self._tokens.grant(self.agent_id, refused=token)
        return await self._paced(kind, call, self._grant.token)

    async def _paced(
        self, kind: ApiCall, call: Callable[[SecretStr], Awaitable[T]], token: SecretStr
    ) -> T:
        try:
            async with self._pacing.call(self.agent_id, self._provider, kind):
                return await call(token)
        except RetryableError as exc:
            if exc.retry_after_seconds:
                await self._pacing.hold_off(self.agent_id, exc.retry_after_seconds)
            raise


class _Once:
    def __init__(self, sending: DataStarting) -> None:
        self._sending, self._done = sending, False

    async def __call__(self) -> None:
        if not self._done:
            self._done = True
            await self._sending()
