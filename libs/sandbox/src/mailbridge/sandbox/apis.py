"""The error bodies of the Gmail API and Microsoft Graph, as their clients see them."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response


def gmail_error(
    status: int, reason: str, message: str, extra: dict[str, Any], detail: str = ""
) -> Response:
    """Google's error envelope; ``detail`` is the message of the single ``errors`` item."""
    item = {"message": detail or message, "domain": "global", "reason": reason}
    body = {"error": {"code": status, "message": message, "errors": [item], **extra}}
    return JSONResponse(body, status_code=status)


def gmail_unauthenticated() -> Response:
    item = {
        "domain": "global",
        "reason": "authError",
        "message": "Invalid Credentials",
        "locationType": "header",
        "location": "Authorization",
    }
    body = {"error": {"errors": [item], "code": 401, "message": "Invalid Credentials"}}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm=""'})


def gmail_insufficient_scope() -> Response:
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": {
            "service": "gmail.googleapis.com",
            "method": "caribou.api.proto.MailboxService",
        },
    }
    extra = {"status": "PERMISSION_DENIED", "details": [info]}
    message = "Request had insufficient authentication scopes."
    return gmail_error(403, "insufficientPermissions", message, extra, "Insufficient Permission")


def gmail_not_found() -> Response:
    """An unknown message, or a history id older than what is kept (OAUTH-FACTS §2.2)."""
    message = "Requested entity was not found."
    return gmail_error(404, "notFound", message, {"status": "NOT_FOUND"})


def gmail_bad_request(message: str, reason: str = "invalidArgument") -> Response:
    return gmail_error(400, reason, message, {"status": "INVALID_ARGUMENT"})


def gmail_unavailable(kind: str, retry_after: int = 1) -> Response:
    """429 names when to retry in its message, as Gmail's does; 429 and 503 in a header too."""
    headers = {"Retry-After": str(retry_after)}
    if kind == "429":
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=retry_after)
        stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = f"User-rate limit exceeded.  Retry after {stamp}"
        extra = {"status": "RESOURCE_EXHAUSTED"}
        response = gmail_error(429, "rateLimitExceeded", message, extra)
        response.headers.update(headers)
        return response
    status = int(kind)
    grpc = "INTERNAL" if status == 500 else "UNAVAILABLE"
    response = gmail_error(status, "backendError", "Backend Error", {"status": grpc})
    if status == 503:
        response.headers.update(headers)
    return response


def graph_error(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    inner = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()),
    }
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse(body, status_code=status, headers=headers)


def graph_unauthenticated() -> Response:
    response = graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return response


def graph_unavailable(kind: str, retry_after: int = 1) -> Response:
    if kind == "429":
        message = "Application is over its MailboxConcurrency limit."
        return graph_error(429, "ApplicationThrottled", message, retry_after)
    if kind == "503":
        return graph_error(503, "serviceNotAvailable", "Service unavailable.", retry_after)
    return graph_error(500, "generalException", "An internal server error occurred.")
