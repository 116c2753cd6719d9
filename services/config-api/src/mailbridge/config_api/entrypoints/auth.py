"""Bearer API keys for every ``/bridge`` route: 401 without a valid key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailbridge.config_api.domain.api_keys import Principal, parse_token, verify
from mailbridge.shared.errors import ErrorCode, MailbridgeError

bearer = HTTPBearer(auto_error=False, description="an operator key or an org key")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    parsed = parse_token(credentials.credentials) if credentials else None
    if parsed is None:
        raise MailbridgeError(ErrorCode.UNAUTHORIZED)
    key_id, secret = parsed
    principal = verify(await request.app.state.container.keys.find(key_id), secret)
    if principal is None:
        raise MailbridgeError(ErrorCode.UNAUTHORIZED)
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
