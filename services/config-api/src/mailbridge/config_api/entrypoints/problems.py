"""Every error answers ``application/problem+json`` (RFC 9457) with a stable ``code`` and a hint."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.NOT_CONFIGURED: 409,
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.WORKER_UNAVAILABLE: 504,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
}


def problem(status: int, info: ErrorInfo, **extra: object) -> JSONResponse:
    body = {
        "type": f"https://mailbridge.dev/problems/{info.code.value}",
        "title": info.message,
        "status": status,
        "code": info.code.value,
        "hint": info.hint,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def _on_mailbridge_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailbridgeError)
    status = _STATUS.get(exc.code, 400)
    response = problem(status, exc.info())
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return problem(422, ErrorInfo.of(ErrorCode.INVALID_INPUT), errors=errors)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem(500, ErrorInfo.of(ErrorCode.INTERNAL))


def install(app: FastAPI) -> None:
    app.add_exception_handler(MailbridgeError, _on_mailbridge_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)
