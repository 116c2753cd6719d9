"""Answering an rpc request that does not decode, instead of leaving its caller waiting.

FastStream alone logs a request whose JSON or fields are wrong and answers nothing: the caller
times out, and reads "no one answered" where the truth is "your request is wrong". A router with
``answering_undecodable`` answers it with ``invalid_input`` naming each wrong field's path and
what is wrong with it, never the value given (it may be a secret).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from faststream.middlewares import ExceptionMiddleware
from pydantic import BaseModel, ValidationError

from mailbridge.shared.errors import ErrorCode, ErrorInfo

log = logging.getLogger(__name__)

RefusalReply = Callable[[ErrorInfo], BaseModel]


def answering_undecodable(refusal: RefusalReply) -> ExceptionMiddleware:
    """The middleware; ``refusal`` makes the reply its callers read an error from."""

    def invalid_request(exc: ValidationError) -> str:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        return _refused(refusal, problems)

    def not_json(exc: json.JSONDecodeError) -> str:
        return _refused(refusal, f"the request is not JSON ({exc.msg})")

    return ExceptionMiddleware(
        publish_handlers={ValidationError: invalid_request, json.JSONDecodeError: not_json}
    )


def _refused(refusal: RefusalReply, problems: str) -> str:
    log.warning("refused an undecodable request: %s", problems)
    return refusal(ErrorInfo.of(ErrorCode.INVALID_INPUT, problems)).model_dump_json()
