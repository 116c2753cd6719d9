"""Every error answers ``application/problem+json`` (RFC 9457) with a stable ``code`` and a hint.

``responses(401, 404, …)`` documents a route's errors with the ``ProblemDetails`` model and an
example each; ``install`` files them under ``application/problem+json`` in the OpenAPI document.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbridge.config_api.domain.errors import ErrorWithStatus, PolicyUnavailable
from mailbridge.config_api.domain.ui_sessions import CSRF_MISSING
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.postgres import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "https://mailbridge.dev/problems/{code}"


class FieldError(BaseModel):
    """One invalid field of a 422: where it is, what is wrong, pydantic's error type."""

    loc: list[str | int] = Field(examples=[["body", "to", 0]])
    msg: str = Field(examples=["Value error, not one email address: 'ada'"])
    type: str = Field(examples=["value_error"])


class ProblemDetails(BaseModel):
    """An error (RFC 9457): branch on ``code``; show ``title`` and the fix-it ``hint``."""

    type: str = Field(
        description="a URI naming the problem: the `code` under https://mailbridge.dev/problems/",
        examples=["https://mailbridge.dev/problems/not_found"],
    )
    title: str = Field(description="what went wrong, for people", examples=["Not found."])
    status: int = Field(description="the HTTP status, repeated", examples=[404])
    code: ErrorCode = Field(description="the stable error code to branch on")
    hint: str = Field(description="how to fix it, for people", examples=["Check the id."])
    errors: list[FieldError] | None = Field(
        default=None, description="the invalid fields, on a 422 for a malformed request"
    )


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.NOT_CONFIGURED: 409,
    ErrorCode.NOT_HELD: 409,  # a held send decided already (the other way), or never held
    ErrorCode.SEND_LIMIT_REACHED: 409,  # approving a held send over the limit: it stays held
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.WORKER_UNAVAILABLE: 504,
    ErrorCode.OAUTH_APP_MISCONFIGURED: 422,  # the broker's refusal to begin a flow with the app
    ErrorCode.PROVIDER_UNAVAILABLE: 503,  # the broker could not reach the provider
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.INTERNAL: 500,
}


def problem_body(status: int, info: ErrorInfo, **extra: object) -> dict[str, object]:
    return {
        "type": PROBLEM_TYPE.format(code=info.code.value),
        "title": info.message,
        "status": status,
        "code": info.code.value,
        "hint": info.hint,
        **extra,
    }


def problem(status: int, info: ErrorInfo, **extra: object) -> JSONResponse:
    return JSONResponse(
        problem_body(status, info, **extra), status_code=status, media_type=PROBLEM_JSON
    )


async def _on_mailbridge_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailbridgeError)
    given = exc.status if isinstance(exc, ErrorWithStatus) else None
    status = given or _STATUS.get(exc.code, 400)
    response = problem(status, exc.info())
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    if any(e["type"] == ErrorCode.MESSAGE_TOO_LARGE.value for e in errors):
        return problem(413, ErrorInfo.of(ErrorCode.MESSAGE_TOO_LARGE), errors=errors)
    return problem(422, ErrorInfo.of(ErrorCode.INVALID_INPUT), errors=errors)


RETRY_AFTER_SECONDS = 5  # a PostgreSQL restart or fail-over takes seconds, not minutes


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL is away (stopped, restarting, out of connections): the request may be retried,
    and the pool connects again by itself on its next acquire. A warning, not a traceback each."""
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    response = problem(503, ErrorInfo.of(ErrorCode.DATABASE_UNAVAILABLE))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem(500, ErrorInfo.of(ErrorCode.INTERNAL))


_HTTP_CODES = {
    400: ErrorCode.INVALID_INPUT,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.MESSAGE_TOO_LARGE,  # a body over its route's max_body_size
}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (a body that does not parse, an unknown route or method)."""
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INVALID_INPUT)
    status = 422 if exc.status_code == 400 else exc.status_code  # a body that does not parse
    response = problem(status, ErrorInfo.of(code))
    response.headers.update(exc.headers or {})
    if status == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str | None:
    """Starlette's 405 names the methods of the first route on the path, where a path here has a
    route per method (GET, PUT and DELETE of an email config); this names every method the
    OpenAPI document gives the path (None for a path it leaves out)."""
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    for template, operations in paths.items():
        if compile_path(template)[0].match(request.url.path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


class TooLargeAsProblem:
    """A body over a route's ``max_body_size`` whose ``Content-Length`` said so is answered by
    Starlette itself, in plain text; this answers the same refusal as every other, a problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_as_problem(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and _plain_413(message):
                replaced = True
                too_large = problem(413, ErrorInfo.of(ErrorCode.MESSAGE_TOO_LARGE))
                await too_large(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, send_as_problem)


def _plain_413(start: Message) -> bool:
    headers: dict[bytes, bytes] = dict(start.get("headers", []))
    plain = headers.get(b"content-type", b"").startswith(b"text/plain")
    return bool(start["status"] == 413 and plain)


def install(app: FastAPI) -> None:
    app.add_middleware(TooLargeAsProblem)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(MailbridgeError, _on_mailbridge_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    for outage in DATABASE_UNAVAILABLE:  # asyncpg's own classes, mapped here and only here
        app.add_exception_handler(outage, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
    _document_as_problem_json(app)


# What each documented error status means on mailbridge's routes, with the code it carries.
_DOCUMENTED: dict[int, tuple[str, ErrorInfo, dict[str, object]]] = {
    401: (
        "No valid API key: send `Authorization: Bearer <api key>`. On the routes the Email tab"
        " uses, no live Email tab session either (an expired one says so: reopen the tab).",
        ErrorInfo.of(ErrorCode.UNAUTHORIZED),
        {},
    ),
    403: (
        "An Email tab session's request other than a GET without the session's `X-CSRF-Token`,"
        " or with an `Origin` other than mailbridge's own. API keys need neither. An agent"
        " token anywhere but its agent's mail and send routes and `/mcp`.",
        CSRF_MISSING,
        {},
    ),
    404: (
        "No such agent, send or client org, or one of another org (never 403).",
        ErrorInfo.of(ErrorCode.NOT_FOUND, "No agent 'agent-42'."),
        {},
    ),
    409: (
        "The agent has no email configuration yet; for a decision on a send, `not_held` (decided"
        " the other way already, or never held) or `send_limit_reached` (it stays held).",
        ErrorInfo.of(ErrorCode.NOT_CONFIGURED),
        {},
    ),
    412: (
        "`If-Match` names another version than the stored one: reload and apply again.",
        ErrorInfo.of(ErrorCode.PRECONDITION_FAILED),
        {},
    ),
    422: (
        "The request is malformed (`errors` lists the fields) or refused as it stands.",
        ErrorInfo.of(ErrorCode.INVALID_INPUT),
        {
            "errors": [
                {
                    "loc": ["body", "to", 0],
                    "msg": "Value error, not one email address: 'ada'",
                    "type": "value_error",
                }
            ]
        },
    ),
    413: (
        "The message is over the stated limits. A send: 10 MiB of attachments in all (about"
        " 14 MB once encoded), a request body of 32 MiB; nothing was queued. A raw read: the"
        " mail-worker's raw cap (`MAILBRIDGE_READ_RAW_MAX_BYTES`); read it parsed instead.",
        ErrorInfo.of(ErrorCode.MESSAGE_TOO_LARGE),
        {},
    ),
    502: (
        "The agent's mail server refused or failed a read on demand: a refused login (fix it in"
        " the Email tab), a timeout or a dropped connection (retry). The code says which.",
        ErrorInfo.of(ErrorCode.AUTH_FAILED),
        {},
    ),
    503: (
        "A service mailbridge depends on did not answer: policy (org OAuth apps, client orgs),"
        " the oauth-broker (sign-ins), or a mail-worker (reads on demand); or the broker could"
        " not reach the provider; or mailbridge's database is away (`database_unavailable`,"
        " with `Retry-After`). Retry.",
        PolicyUnavailable().info(),
        {},
    ),
    504: (
        "No mail-worker answered within the test timeout.",
        ErrorInfo.of(ErrorCode.WORKER_UNAVAILABLE),
        {},
    ),
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering these error statuses, each a ``ProblemDetails``."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, info, extra = _DOCUMENTED[status]
        example = problem_body(status, info, **extra)
        documented[status] = {
            "model": ProblemDetails,
            "description": description,
            "content": {PROBLEM_JSON: {"example": example}},
        }
        if status == 401:
            documented[status]["headers"] = {
                "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
            }
    return documented


def _document_as_problem_json(app: FastAPI) -> None:
    """FastAPI files a response model under the route's media type (``application/json``); an
    error is ``application/problem+json``, so its schema moves there in the OpenAPI document."""
    generate = app.openapi
    problem_ref = {"$ref": "#/components/schemas/ProblemDetails"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for answer in operation.get("responses", {}).values():
                    content = answer.get("content", {})
                    if content.get("application/json", {}).get("schema") == problem_ref:
                        moved = content.pop("application/json")
                        content[PROBLEM_JSON] = {**moved, **content.get(PROBLEM_JSON, {})}
        return document

    app.openapi = openapi  # type: ignore[method-assign]
